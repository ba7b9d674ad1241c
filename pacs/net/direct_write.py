"""Writing a message's PDUs straight to a plain TCP socket: one writev, no copies.

asyncio's socket transport (Python 3.11) joins what `writelines` is given into one
bytes object, and what the kernel does not take at once is copied again into its
buffer, whose front is then moved down after every send: a CT instance of half a
megabyte was copied three to five times on its way out. Here the pieces (PDU headers
and views of the data set as read from the file) go to `os.writev` as they are; what
the socket does not take is written when it can take more.

Only for a plain TCP connection whose transport has nothing buffered (so no bytes
can overtake others); a TLS association, or one with bytes queued, goes through the
transport as before. Waiting for the socket uses a duplicate of its descriptor: the
event loop lets no one else watch a descriptor a transport owns.
"""

import asyncio
import os
from collections.abc import Sequence
from typing import Any, Protocol


class Connection(Protocol):
    """What DirectWriter needs of a connection: the `Wire` of an association, or a
    StreamWriter."""

    @property
    def transport(self) -> asyncio.WriteTransport: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


# Pieces per writev: Linux takes at most 1024 (IOV_MAX).
MAX_PIECES = 1024


class DirectWriter:
    """Writes pieces to the transport's socket itself, when it is plain TCP and idle."""

    def __init__(self, writer: Connection) -> None:
        self._transport = writer.transport
        sock = writer.get_extra_info("socket")
        plain = writer.get_extra_info("sslcontext") is None and sock is not None
        self._fd = sock.fileno() if plain and hasattr(os, "writev") else -1
        self.plain = plain  # a plain TCP connection, not TLS
        self._waiting: asyncio.Future[None] | None = None
        self.busy = False  # part of a message is written and the rest is not

    def can_write(self) -> bool:
        """True when a message may go out here rather than through the transport."""
        transport = self._transport
        return (
            self._fd >= 0 and not transport.is_closing() and not transport.get_write_buffer_size()
        )

    async def write(self, pieces: Sequence[bytes | memoryview], timeout: float | None) -> None:
        """Write every piece, in order; raises ConnectionError when the connection fails or
        is closed meanwhile, TimeoutError when the socket takes nothing for `timeout` s."""
        left = list(pieces)
        self.busy = True
        try:
            while left:
                try:
                    written = os.writev(self._fd, left[:MAX_PIECES])
                except (BlockingIOError, InterruptedError):
                    written = 0
                _advance(left, written)
                if left:
                    await self._writable(timeout)
        finally:
            self.busy = False

    async def _writable(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        waiting = self._waiting = loop.create_future()
        watched = os.dup(self._fd)

        def ready() -> None:
            if not waiting.done():
                waiting.set_result(None)

        loop.add_writer(watched, ready)
        try:
            async with asyncio.timeout(timeout):
                await waiting
        finally:
            loop.remove_writer(watched)
            os.close(watched)
            self._waiting = None

    def close(self) -> bool:
        """The association is ending: wake a write waiting for the socket, with an error,
        and write nothing more here. True when a message was cut off in the middle."""
        self._fd = -1
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_exception(ConnectionAbortedError("the association was closed"))
        return self.busy


def _advance(pieces: list[bytes | memoryview], written: int) -> None:
    """Drop from the front of `pieces` the `written` bytes the socket took."""
    done = 0
    while done < len(pieces) and written >= len(pieces[done]):
        written -= len(pieces[done])
        done += 1
    if written:
        pieces[done] = memoryview(pieces[done])[written:]
    del pieces[:done]
