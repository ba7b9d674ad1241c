"""A DICOM connection on asyncio: the transport, and a BufferedProtocol reading into our buffers.

During the A-ASSOCIATE exchange the handshake reads whole PDUs with `read_exactly`,
as from a stream. Once an association is established, `start_pdus` hands every later
byte to a `PduParser` in the callback that received it, from the buffer the socket
(or asyncio's TLS layer) read it into: no await, no timeout and no copy per read, and a
data set's fragments reach their consumer as memoryviews of those buffers. A region
once parsed is never written again (a full buffer is replaced, not reused), so a
consumer may keep its views as long as it likes.

Reading pauses while anything holds it (`hold`): a service lagging behind its data
set, or too many requests queued; so memory stays bounded whatever the peer sends.
A silent peer is timed out by one timer handle, re-armed once per timeout period.
"""

import asyncio
import functools
import socket
from collections.abc import Callable
from typing import Any, Protocol, cast

from pacs.net.pdata import PduParser, PduSink
from pacs.net.pdu import PduError

# Bytes a buffer holds: at most one read's worth. A new one is made once less than
# MIN_READ is free, carrying over only the unparsed bytes (a partial header at most).
BUFFER_SIZE = 256 * 1024
MIN_READ = 16 * 1024
# Unread bytes the handshake lets pile up before it stops reading.
HANDSHAKE_READAHEAD = 256 * 1024
# Linux only; elsewhere the kernel's delayed ACKs stand.
TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
_INET = (socket.AF_INET, socket.AF_INET6)


class Receiver(PduSink, Protocol):
    """What an established association is told by its connection."""

    def expects_silence(self) -> bool:
        """True while the peer waits for us, so its silence is no timeout."""

    def timed_out(self) -> None:
        """Nothing arrived for the idle timeout while the peer owed us data."""

    def failed(self, error: PduError) -> None:
        """The peer broke PS3.8; nothing more is parsed."""

    def ended(self, error: BaseException | None) -> None:
        """The connection is gone."""


class Wire(asyncio.BufferedProtocol):
    """One connection: reads as a protocol, writes and flow control as a stream writer does."""

    def __init__(self, on_connected: Callable[["Wire"], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_connected = on_connected
        self._transport: asyncio.Transport | None = None
        self._buffer = memoryview(bytearray(BUFFER_SIZE))
        self._start = self._end = 0  # unparsed bytes are _buffer[_start:_end]
        self._want = 0  # bytes a handshake read waits for
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._lost = False
        self._error: BaseException | None = None
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._parser: PduParser | None = None
        self._receiver: Receiver | None = None
        self._holds: set[object] = set()
        self._reading = True
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._idle_timeout: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        self._quickack: Callable[[], None] | None = None

    def acknowledge_each_read(self) -> None:
        """Have the kernel acknowledge what arrived at once, after every read (TCP_QUICKACK).

        A peer that leaves Nagle's algorithm on, as DCMTK's tools do by default, holds a
        C-STORE-RQ's data set until its command PDU is acknowledged, and a C-STORE-RSP
        split in two writes until its first part is. The kernel delays that ACK while it
        waits for an answer to carry it, which pacs only sends once the whole message is
        in: a stall of one delayed-ACK timeout per instance. Quick-ack mode ends by
        itself, so it is armed again after each read.
        """
        sock = self.get_extra_info("socket")
        if TCP_QUICKACK is not None and sock is not None and sock.family in _INET:
            self._quickack = functools.partial(sock.setsockopt, socket.IPPROTO_TCP, TCP_QUICKACK, 1)

    # -- asyncio's side ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if self._on_connected is not None:
            self._on_connected(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        needed = max(MIN_READ, self._want - (self._end - self._start))
        if len(self._buffer) - self._end < needed:
            unparsed = self._buffer[self._start : self._end]
            fresh = memoryview(bytearray(max(BUFFER_SIZE, needed + len(unparsed))))
            fresh[: len(unparsed)] = unparsed
            self._buffer, self._start, self._end = fresh, 0, len(unparsed)
        return self._buffer[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        if self._quickack is not None:
            self._quickack()
        if self._parser is None:
            self._wake()
            if self._end - self._start > max(HANDSHAKE_READAHEAD, self._want):
                self._hold_reading(self)
            return
        self._last_data = self._loop.time()
        self._parse()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport: DICOM has no half-closed state

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost, self._error = True, exc
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError("connection lost"))
        self._cancel_timer()
        if self._receiver is not None and not self._stopped:
            self._receiver.ended(exc)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # -- the handshake's reads -------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _more(self) -> None:
        self._release_reading(self)
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read_exactly(self, size: int) -> bytes:
        """The next `size` bytes; raises asyncio.IncompleteReadError if the connection ends."""
        while self._end - self._start < size:
            if self._eof or self._lost:
                partial = bytes(self._buffer[self._start : self._end])
                raise asyncio.IncompleteReadError(partial, size)
            self._want = size
            await self._more()
        self._want = 0
        data = bytes(self._buffer[self._start : self._start + size])
        self._start += size
        return data

    async def discard_until_eof(self) -> None:
        """Read and drop whatever arrives until the peer closes the connection."""
        while not (self._eof or self._lost):
            self._start = self._end
            self._want = 1
            await self._more()

    # -- the established association's reads -----------------------------------------

    def start_pdus(self, receiver: Receiver, idle_timeout: float | None) -> None:
        """From now on, parse every byte as the PDUs of an established association."""
        self._receiver = receiver
        self._parser = PduParser(receiver)
        self._want = 0
        self._release_reading(self)
        self._idle_timeout = idle_timeout
        self._last_data = self._loop.time()
        if idle_timeout is not None:
            self._timer = self._loop.call_at(self._last_data + idle_timeout, self._check_idle)
        if self._end > self._start:  # sent right behind the A-ASSOCIATE PDU
            self._parse()
        if self._lost and not self._stopped:
            receiver.ended(self._error)

    @property
    def _stopped(self) -> bool:
        return self._parser is None or self._parser.stopped

    def stop(self) -> None:
        """Parse nothing more: the association has ended."""
        if self._parser is not None:
            self._parser.stopped = True
        self._cancel_timer()

    def _parse(self) -> None:
        assert self._parser is not None and self._receiver is not None
        if self._parser.stopped:
            self._start = self._end
            return
        try:
            self._start = self._parser.parse(self._buffer, self._start, self._end)
        except PduError as exc:
            self.stop()
            self._receiver.failed(exc)

    def hold(self, reason: object) -> None:
        """Stop reading the socket until `release(reason)`."""
        self._hold_reading(reason)

    def release(self, reason: object) -> None:
        self._release_reading(reason)

    def _hold_reading(self, reason: object) -> None:
        self._holds.add(reason)
        if self._reading and self._transport is not None:
            self._reading = False
            self._transport.pause_reading()

    def _release_reading(self, reason: object) -> None:
        self._holds.discard(reason)
        if not self._holds and not self._reading and self._transport is not None:
            self._reading = True
            if not self._transport.is_closing():
                self._transport.resume_reading()

    def _check_idle(self) -> None:
        self._timer = None
        assert self._receiver is not None and self._idle_timeout is not None
        now = self._loop.time()
        if self._holds or self._receiver.expects_silence():
            # Silence counts only while the peer owes us data: start again from now.
            self._last_data = now
        elif now - self._last_data >= self._idle_timeout:
            self._receiver.timed_out()
            return
        self._timer = self._loop.call_at(self._last_data + self._idle_timeout, self._check_idle)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- writing and closing ---------------------------------------------------------

    @property
    def transport(self) -> asyncio.Transport:
        assert self._transport is not None, "not connected"
        return self._transport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.transport.write(data)

    def writelines(self, parts: list[bytes | memoryview]) -> None:
        self.transport.writelines(parts)

    def write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size()

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self._lost:
            raise ConnectionResetError("connection lost")
        if self._write_paused:
            self._drain_waiter = self._loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self, grace: float | None = None) -> None:
        """Close once what is buffered is sent; with `grace`, drop it after that long."""
        if not self.transport.is_closing():
            self.transport.close()
        if grace is not None and not self._lost:
            self._loop.call_later(grace, self._drop)

    def _drop(self) -> None:
        if not self._lost:
            self.transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the connection is gone."""
        await asyncio.shield(self._closed)
