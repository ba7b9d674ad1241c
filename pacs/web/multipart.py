"""multipart/related response bodies (RFC 2387, PS3.18 8.6.1.2), written part by part.

Each part's bytes are written as they come, and aiohttp's `write` waits while the
client's socket is full: memory holds a chunk, never a whole response.
"""

import secrets
from collections.abc import AsyncIterator

from aiohttp import web


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

    async def start(self, request: web.Request) -> None:
        await self.response.prepare(request)

    async def part(
        self, content_type: str, chunks: AsyncIterator[bytes], location: str | None = None
    ) -> None:
        """Write one part: its headers, then its bytes as they come."""
        head = f"--{self.boundary}\r\nContent-Type: {content_type}\r\n"
        if location is not None:
            head += f"Content-Location: {location}\r\n"
        await self.response.write(f"{head}\r\n".encode())
        async for chunk in chunks:
            self.bytes += len(chunk)
            await self.response.write(chunk)
        await self.response.write(b"\r\n")
        self.parts += 1

    async def finish(self) -> web.StreamResponse:
        await self.response.write(f"--{self.boundary}--\r\n".encode())
        await self.response.write_eof()
        return self.response


async def one(data: bytes) -> AsyncIterator[bytes]:
    """A part's bytes that are in memory already."""
    yield data
