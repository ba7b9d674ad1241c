"""multipart/related response bodies (RFC 2387, PS3.18 8.6.1.2), written part by part.

Each part's bytes are written as they come, and aiohttp's `write` waits while the
client's socket is full: memory holds a chunk, never a whole response.
"""

import secrets
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

WRITE_BUFFER = 4 * 1024 * 1024


class MultipartResponse:
    """A streamed multipart/related response whose parts are of `part_type`."""

    def __init__(self, part_type: str) -> None:
        self.boundary = secrets.token_hex(16)
        self.response = web.StreamResponse(
            headers={
                "Content-Type": (f'multipart/related; type="{part_type}"; boundary={self.boundary}')
            }
        )
        self.parts = 0
        self.bytes = 0

    def _head(self, content_type: str, location: str | None) -> bytes:
        head = f"--{self.boundary}\r\nContent-Type: {content_type}\r\n"
        if location is not None:
            head += f"Content-Location: {location}\r\n"
        return f"{head}\r\n".encode()

    def length(self, parts: Sequence[tuple[str, int]]) -> int:
        """The body's length for parts of these (Content-Type, size), none with a location."""
        heads = sum(len(self._head(kind, None)) + 2 for kind, _ in parts)
        return heads + sum(size for _, size in parts) + len(self._tail())

    def _tail(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()

    async def start(self, request: web.Request, length: int | None = None) -> None:
        """Send the status and headers; with the body's `length` known, it is not chunked."""
        if length is not None:
            self.response.content_length = length
        if request.transport is not None:
            # Room for a few files' chunks: a write returns while the socket still has
            # bytes to send, instead of waiting for it to drain almost empty.
            request.transport.set_write_buffer_limits(high=WRITE_BUFFER)
        await self.response.prepare(request)

    async def part(
        self, content_type: str, chunks: AsyncIterator[bytes], location: str | None = None
    ) -> None:
        """Write one part: its headers, then its bytes as they come."""
        await self.response.write(self._head(content_type, location))
        async for chunk in chunks:
            self.bytes += len(chunk)
            await self.response.write(chunk)
        await self.response.write(b"\r\n")
        self.parts += 1

    async def finish(self) -> web.StreamResponse:
        await self.response.write(self._tail())
        await self.response.write_eof()
        return self.response


async def one(data: bytes) -> AsyncIterator[bytes]:
    """A part's bytes that are in memory already."""
    yield data
