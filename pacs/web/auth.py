"""Who is calling: HTTP basic or bearer credentials mapped to a peer's DICOM permissions.

Each [[web.users]] entry acts as one configured peer: it may do what that peer's `allow`
grants, from that peer's `hosts`, as the access policy in force says (it follows SIGHUP).
Without users the server listens on loopback only and every caller may do everything
(`server.py` enforces the address). Refusals are logged at WARNING, never a credential.
"""

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import hdrs, web

from pacs.archive.access import ALL_OPERATIONS, AccessPolicy, Operation
from pacs.config_web import WebUser
from pacs.web.credentials import token_sha256, verify_password

log = logging.getLogger(__name__)

REALM = "pacs"
# Successful basic logins remembered, so PBKDF2 runs once per user and password, not per
# request (a viewer sends hundreds). Keyed by an HMAC under a key made at start.
_REMEMBERED = 1024


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of one request: its name for logs and what it may do."""

    name: str
    allowed: frozenset[Operation]
    peer: str = ""  # the AE title whose permissions it has ("" without users)


CALLER = web.RequestKey("caller", Caller)  # set by the middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _challenge(reason: str) -> web.HTTPUnauthorized:
    error = web.HTTPUnauthorized(text=f"{reason}\n")
    error.headers.add(hdrs.WWW_AUTHENTICATE, f'Basic realm="{REALM}", charset="UTF-8"')
    error.headers.add(hdrs.WWW_AUTHENTICATE, f'Bearer realm="{REALM}"')
    return error


class Authenticator:
    """Finds the user a request's Authorization header names, and what it may do."""

    def __init__(self, users: Sequence[WebUser], policy: Callable[[], AccessPolicy]) -> None:
        self._by_name = {user.name: user for user in users}
        self._by_token = {user.token_sha256: user for user in users if user.token_sha256}
        self._policy = policy
        self._key = secrets.token_bytes(32)
        self._remembered: set[bytes] = set()
        # One slow hash at a time: a flood of wrong passwords holds one worker thread,
        # not every thread the loop shares with ingest.
        self._hashing = asyncio.Semaphore(1)

    @property
    def open(self) -> bool:
        """True without users: every (loopback) caller may do everything."""
        return not self._by_name

    async def caller(self, request: web.Request) -> Caller:
        """The request's caller; HTTPUnauthorized without valid credentials."""
        if self.open:
            return Caller("anonymous", ALL_OPERATIONS)
        user = await self._user(request.headers.get(hdrs.AUTHORIZATION, ""))
        address = request.remote or ""
        if user is None:
            log.warning("web: authentication failed from %s %s", address, request.path)
            raise _challenge("valid credentials are needed")
        allowed = self._policy().operations_for(user.peer, address)
        return Caller(user.name, allowed, user.peer)

    async def _user(self, authorization: str) -> WebUser | None:
        scheme, _, credentials = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self._by_token.get(token_sha256(credentials.strip()))
        if scheme != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, _, password = decoded.partition(":")
        user = self._by_name.get(name)
        if user is None or user.password_hash is None:
            return None
        if await self._password_matches(user, password):
            return user
        return None

    async def _password_matches(self, user: WebUser, password: str) -> bool:
        assert user.password_hash is not None
        seen = hmac.new(self._key, f"{user.name}\0{password}".encode(), hashlib.sha256).digest()
        if seen in self._remembered:
            return True
        async with self._hashing:
            if not await asyncio.to_thread(verify_password, password, user.password_hash):
                return False
        if len(self._remembered) >= _REMEMBERED:
            self._remembered.clear()
        self._remembered.add(seen)
        return True


def require(request: web.Request, operation: Operation) -> Caller:
    """The caller, when it may perform `operation`; HTTPForbidden (logged) when not."""
    caller = request[CALLER]
    if operation not in caller.allowed:
        log.warning(
            "web: permission refused: %s@%s may not %s (%s %s)",
            caller.name,
            request.remote,
            operation,
            request.method,
            request.path,
        )
        raise web.HTTPForbidden(text=f"{caller.name} may not {operation}\n")
    return caller


def auth_middleware(authenticator: Authenticator) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Authenticate every request but CORS preflights (which carry no credentials)."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != hdrs.METH_OPTIONS:
            request[CALLER] = await authenticator.caller(request)
        return await handler(request)

    return authenticate
