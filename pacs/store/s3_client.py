"""The S3 client of the S3 backend (obstore): how it connects, and what its failures mean.

obstore's blocking calls run the request in Rust with the GIL released, so the store's
methods call them straight from the worker threads that call the store; no event loop
of its own. Failures come fast: a short connect timeout and two retries with short
back-off, so a store whose object store is down answers 0xA7xx within a second or so (one
that accepts connections and then hangs, within REQUEST_TIMEOUT), and the client's next
request connects afresh once the object store is back.
"""

import errno
from datetime import timedelta

from obstore.exceptions import BaseError, PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from pacs.config_storage import S3Settings
from pacs.errors import StoreUnavailable

CONNECT_TIMEOUT = timedelta(seconds=2)
# A whole request, upload included; a blob's upload is at most MULTIPART_FROM bytes
# in one request, parts of PART_BYTES beyond.
REQUEST_TIMEOUT = timedelta(seconds=20)
RETRIES = 2
RETRY_TIMEOUT = timedelta(seconds=5)


def connect(settings: S3Settings) -> S3Store:
    """A client of the bucket; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.

    Every upload carries the SHA-256 of its body (x-amz-checksum-sha256), which S3
    checks against the bytes it received before it answers.
    """
    plain_http = settings.endpoint is not None and settings.endpoint.startswith("http://")
    return S3Store(
        settings.bucket,
        config={
            "region": settings.region,
            "checksum_algorithm": "sha256",
            **({"endpoint": settings.endpoint} if settings.endpoint else {}),
        },
        client_options={
            "allow_http": plain_http,
            "connect_timeout": CONNECT_TIMEOUT,
            "timeout": REQUEST_TIMEOUT,
        },
        retry_config={
            "max_retries": RETRIES,
            "retry_timeout": RETRY_TIMEOUT,
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=1),
                "base": 2,
            },
        },
    )


def reason(exc: BaseException) -> str:
    """The first line of an obstore error: what failed, without its debug dump."""
    first = str(exc).strip().splitlines()
    text = first[0] if first else type(exc).__name__
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
        return f"access denied (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY): {text}"
    return text


def unavailable(action: str, exc: BaseException) -> StoreUnavailable:
    """StoreUnavailable for a request the object store did not answer, or refused."""
    return StoreUnavailable(f"object store: cannot {action}: {reason(exc)}")


def read_error(action: str, exc: BaseError | OSError) -> OSError:
    """An OSError for a failed read: retrieve reports it as the file not being readable."""
    return OSError(errno.EIO, f"object store: cannot {action}: {reason(exc)}")
