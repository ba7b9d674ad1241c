"""Settings of the blob store's backend: [storage] backend and the [storage.s3] table.

Credentials are not settings: the S3 backend reads AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) from the environment, as AWS SDKs do, so
they never sit in a config file or a log line.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from pacs.config_values import Invalid, one_of, show, text


class StorageBackend(StrEnum):
    """Where blobs are kept: files under [storage] root, or objects in an S3 bucket."""

    FILESYSTEM = "filesystem"
    S3 = "s3"


@dataclass(frozen=True, slots=True)
class S3Settings:
    """An S3-compatible bucket holding the blobs, each under `prefix` + its SHA-256."""

    bucket: str
    endpoint: str | None = None  # None: AWS's own endpoint for the region
    prefix: str = ""
    region: str = "us-east-1"


def _endpoint(value: object) -> str:
    url = text(value)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"must be an http:// or https:// URL, got {show(value)}")
    return url.rstrip("/")


def _bucket(value: object) -> str:
    name = text(value)
    # S3's rules, shortened: 3-63 characters of lower-case letters, digits, '.', '-'.
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789.-")
    if not 3 <= len(name) <= 63 or not set(name) <= allowed:
        raise Invalid(f"must be an S3 bucket name (3-63 of a-z 0-9 . -), got {show(value)}")
    return name


def _prefix(value: object) -> str:
    if not isinstance(value, str) or value.startswith("/"):
        raise Invalid(f"must be a string not starting with '/', got {show(value)}")
    return value


BACKEND_KEYS: Mapping[str, Callable[[object], object]] = {
    "backend": one_of(list(StorageBackend)),
}
S3_KEYS: Mapping[str, Callable[[object], object]] = {
    "endpoint": _endpoint,
    "bucket": _bucket,
    "prefix": _prefix,
    "region": text,
}
S3_REQUIRED = ("bucket",)


def split_storage_table(table: object) -> tuple[object, object | None]:
    """[storage]'s own keys, and its [storage.s3] table (None when absent)."""
    if not isinstance(table, dict) or "s3" not in table:
        return table, None
    own = {key: value for key, value in table.items() if key != "s3"}
    return own, table["s3"]


def check_backend(backend: StorageBackend, s3: S3Settings | None) -> None:
    """The S3 backend needs its table; Invalid says which key is missing."""
    if backend is StorageBackend.S3 and s3 is None:
        raise Invalid('[storage] backend: "s3" needs a [storage.s3] table with a bucket')
