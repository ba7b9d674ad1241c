"""The DICOMweb benchmark's HTTP client: one keep-alive connection per thread, timed calls.

http.client rather than a client library: its overhead is small and the same for every
target, and the harness stays free of pacs's own dependencies.
"""

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DICOM_JSON = "application/dicom+json"
ANY_FRAME = "multipart/related; type=application/octet-stream; transfer-syntax=*"
ANY_INSTANCE = 'multipart/related; type="application/dicom"; transfer-syntax=*'
CHUNK = 1 << 20
TIMEOUT = 600.0


class RequestFailed(RuntimeError):
    """A DICOMweb call answered with a status other than the one expected."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    size: int  # body bytes
    seconds: float  # from sending the request to the last body byte
    body: bytes = b""  # kept only when asked for


class Client:
    """Calls on one DICOMweb base URL; each thread has its own persistent connection."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path.rstrip("/")
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
            self._local.conn = conn
        return conn

    def call(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None = None,
        *,
        keep: bool = False,
    ) -> Reply:
        """One request; the body is read to its end in chunks (kept only if `keep`). A
        kept-alive connection the server closed while idle is reopened once."""
        reused = getattr(self._local, "conn", None) is not None
        try:
            return self._exchange(method, path, headers, body, keep)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            return self._exchange(method, path, headers, body, keep)

    def _exchange(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None, keep: bool
    ) -> Reply:
        conn = self._connection()
        started = time.perf_counter()
        try:
            conn.request(method, self.path + path, body=body, headers=headers)
            response = conn.getresponse()
            kept, size = [], 0
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if keep:
                    kept.append(chunk)
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            raise
        return Reply(response.status, size, time.perf_counter() - started, b"".join(kept))

    def get(self, path: str, accept: str, *, keep: bool = False, expect: int = 200) -> Reply:
        reply = self.call("GET", path, {"Accept": accept}, keep=keep)
        if reply.status != expect:
            raise RequestFailed(f"GET {path}: HTTP {reply.status}")
        return reply

    def json(self, path: str) -> list[dict[str, Any]]:
        reply = self.get(path, DICOM_JSON, keep=True)
        return list(json.loads(reply.body)) if reply.body else []

    def stow(self, part10_files: Iterable[bytes]) -> Reply:
        """STOW-RS: POST the files to /studies as one multipart/related request."""
        boundary = uuid.uuid4().hex
        parts = [
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
            for data in part10_files
        ]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        headers = {"Content-Type": content_type, "Accept": DICOM_JSON}
        reply = self.call("POST", "/studies", headers, body)
        if reply.status != 200:
            raise RequestFailed(f"POST /studies: HTTP {reply.status}")
        return reply

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction 0.95 for p95) of non-empty `values`."""
    ranked = sorted(values)
    return ranked[max(0, min(len(ranked) - 1, round(fraction * len(ranked) + 0.5) - 1))]
