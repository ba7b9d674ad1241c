"""DirectWriter on a real loopback connection: every byte in order when the socket takes
only part at a time, and a write waiting for the socket ends when the association does."""

import asyncio
import contextlib
import hashlib
import os
import socket
from collections.abc import AsyncIterator

import pytest

from pacs.net.direct_write import DirectWriter


class Peer:
    """A loopback server that reads what it is sent, slowly if asked, and hashes it."""

    def __init__(self) -> None:
        self.received = hashlib.sha256()
        self.count = 0
        self.reading = asyncio.Event()  # cleared: the peer reads nothing
        self.reading.set()
        self.done = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await self.reading.wait()
            data = await reader.read(4096)
            if not data:
                break
            self.received.update(data)
            self.count += len(data)
        writer.close()
        self.done.set()


@pytest.fixture
async def connection() -> AsyncIterator[tuple[Peer, asyncio.StreamWriter]]:
    peer = Peer()
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # fills at once
    _, writer = await asyncio.open_connection(sock=sock)
    try:
        yield peer, writer
    finally:
        peer.reading.set()  # what is queued can go, and the connection end
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        await asyncio.wait_for(peer.done.wait(), 30)
        server.close()
        await server.wait_closed()


async def test_every_piece_arrives_in_order_though_the_socket_takes_a_part_at_a_time(
    connection: tuple[Peer, asyncio.StreamWriter],
) -> None:
    peer, writer = connection
    blobs = [os.urandom(size) for size in (7, 65536, 1, 300_000, 12345)]
    pieces: list[bytes | memoryview] = [blobs[0], memoryview(blobs[1])[100:], *blobs[2:]]
    sent = b"".join(bytes(piece) for piece in pieces)
    direct = DirectWriter(writer)

    assert direct.can_write()
    await direct.write(pieces * 4, timeout=30)
    writer.close()
    await asyncio.wait_for(peer.done.wait(), 30)

    assert peer.count == len(sent) * 4
    assert peer.received.hexdigest() == hashlib.sha256(sent * 4).hexdigest()


async def test_a_write_waiting_for_the_socket_fails_when_the_association_ends(
    connection: tuple[Peer, asyncio.StreamWriter],
) -> None:
    peer, writer = connection
    peer.reading.clear()
    direct = DirectWriter(writer)
    writing = asyncio.create_task(direct.write([os.urandom(8 << 20)], timeout=30))
    while not direct.busy:  # once it is, the write waits for the socket: it is full
        await asyncio.sleep(0)

    assert direct.close() is True  # cut off in the middle
    with pytest.raises(ConnectionError):
        await writing
    assert not direct.busy
    assert not direct.can_write()


async def test_nothing_goes_around_bytes_queued_in_the_transport(
    connection: tuple[Peer, asyncio.StreamWriter],
) -> None:
    peer, writer = connection
    peer.reading.clear()
    writer.write(os.urandom(8 << 20))  # more than the socket takes: the rest is queued

    assert not DirectWriter(writer).can_write()
