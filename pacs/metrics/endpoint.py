"""The metrics endpoint: a minimal HTTP/1.0 server on the archive's event loop.

It answers GET (and HEAD) of /metrics with the archive's registry in Prometheus's text
format and closes the connection; anything else gets 404 or 405. No thread, no framework:
Prometheus sends one small request per scrape.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

# Seconds a client has to send its request; a scrape sends it at once.
REQUEST_TIMEOUT = 10.0
MAX_HEADER_LINES = 100
PATHS = ("/metrics", "/")
# The classic text format, which every Prometheus reads; the archive's metric names need
# nothing newer.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _response(code: int, reason: str, body: bytes, content_type: str, head: bool) -> bytes:
    header = (
        f"HTTP/1.0 {code} {reason}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    return header if head else header + body


def _plain(code: int, reason: str) -> bytes:
    return _response(code, reason, f"{reason}\n".encode(), "text/plain; charset=utf-8", False)


class MetricsEndpoint:
    """Serves `registry` on host:port; `refresh` runs before each scrape (probes.py)."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        refresh: Callable[[], Awaitable[None]],
    ) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._refresh = refresh
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): with port 0 in the settings, the one the OS chose."""
        assert self._server is not None, "metrics endpoint not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        """Listen; OSError when the address cannot be used."""
        self._server = await asyncio.start_server(self._answer, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                method, path = await _read_request(reader)
            writer.write(await self._respond(method, path))
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass  # a client that sent no request, or went away: nothing to answer
        finally:
            writer.close()

    async def _respond(self, method: str, path: str) -> bytes:
        if method not in ("GET", "HEAD"):
            return _plain(405, "Method Not Allowed")
        if path.split("?", 1)[0] not in PATHS:
            return _plain(404, "Not Found")
        await self._refresh()
        body = generate_latest(self._registry)
        return _response(200, "OK", body, CONTENT_TYPE, method == "HEAD")


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The request line's method and path; the headers are read and ignored.

    ValueError for a request that is not HTTP.
    """
    words = (await reader.readline()).decode("latin-1").split()
    if len(words) != 3 or not words[2].startswith("HTTP/"):
        raise ValueError("not an HTTP request")
    for _ in range(MAX_HEADER_LINES):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return words[0], words[1]
    raise ValueError("too many header lines")
