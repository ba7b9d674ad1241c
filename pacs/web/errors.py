"""The one table from the archive's errors to HTTP statuses, and the middleware that uses it.

Handlers raise domain errors (pacs.errors) or aiohttp's HTTP exceptions; what reaches
the client is a status and a one-line text/plain reason.
"""

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from pacs.errors import (
    DataSetMismatch,
    InstanceConflict,
    InvalidIdentifier,
    InvalidInstance,
    PacsError,
    ResourceNotFound,
    StoreFull,
    StoreUnavailable,
    TransferUnavailable,
)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Most specific first: the first class the error is an instance of gives the status.
HTTP_STATUS: tuple[tuple[type[PacsError], int], ...] = (
    (InvalidIdentifier, 400),  # a search parameter the model does not allow
    (InvalidInstance, 400),
    (InstanceConflict, 409),
    (ResourceNotFound, 404),
    (TransferUnavailable, 406),  # not in a media type / transfer syntax the client accepts
    (StoreFull, 507),
    (StoreUnavailable, 503),
)


# STOW-RS FailureReason (0008,1197) per instance: C-STORE's statuses (PS3.4 B.2.3).
FAILURE_REASON: tuple[tuple[type[PacsError], int], ...] = (
    (DataSetMismatch, 0xA900),  # not the SOP Class / Instance / study announced
    (InvalidInstance, 0xC000),  # cannot understand
    (InstanceConflict, 0x0111),  # duplicate SOP Instance refused by the duplicate policy
    (StoreUnavailable, 0xA700),  # out of resources
)
PROCESSING_FAILURE = 0x0110


def failure_reason(error: PacsError) -> int:
    return next(
        (code for kind, code in FAILURE_REASON if isinstance(error, kind)), PROCESSING_FAILURE
    )


def http_status(error: PacsError) -> int:
    return next((code for kind, code in HTTP_STATUS if isinstance(error, kind)), 500)


class BadRequest(InvalidIdentifier):
    """A request parameter the service cannot use (the message says which and why)."""


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a PacsError with its status and message; log server-side failures."""
    try:
        return await handler(request)
    except PacsError as exc:
        code = http_status(exc)
        level = logging.WARNING if code < 500 else logging.ERROR
        log.log(level, "web: %s %s: %d %s", request.method, request.path, code, exc)
        return web.Response(status=code, text=f"{exc}\n")
