"""A received data set's fragments: handed on as they arrive, the socket held while they pile up."""

from dataclasses import dataclass, field

import pytest

from pacs.errors import ProtocolError
from pacs.net.command_set import ReceivedCommand, encode_command
from pacs.net.dimse import HELD_BYTES, RELEASE_BYTES, Command, DimseMessage

CT = "1.2.840.10008.5.1.4.1.1.2"


@dataclass
class Reading:
    """A ReadFlow that records whether the socket is being read."""

    holds: set[object] = field(default_factory=set)
    events: list[str] = field(default_factory=list)

    def hold(self, reason: object) -> None:
        self.holds.add(reason)
        self.events.append("hold")

    def release(self, reason: object) -> None:
        self.holds.discard(reason)
        self.events.append("release")


def _message(flow: Reading) -> DimseMessage:
    command = encode_command(
        {
            "CommandField": Command.C_STORE_RQ,
            "MessageID": 1,
            "AffectedSOPClassUID": CT,
            "CommandDataSetType": 0x0001,
        }
    )
    return DimseMessage(ReceivedCommand(command), 1, CT, "1.2.840.10008.1.2.1", True, flow=flow)


async def test_fragments_come_out_as_fed_and_end_with_the_last() -> None:
    message = _message(Reading())
    received = bytearray(b"abcdef")
    message.feed(memoryview(received)[:2], is_last=False)
    message.feed(memoryview(received)[2:], is_last=True)

    assert [bytes(f) async for f in message.fragments()] == [b"ab", b"cdef"]


async def test_the_socket_is_held_while_the_consumer_lags_and_released_once_it_catches_up() -> None:
    flow = Reading()
    message = _message(flow)
    chunk = memoryview(bytes(64 * 1024))
    fed = 0
    while fed <= HELD_BYTES:
        message.feed(chunk, is_last=False)
        fed += len(chunk)
    assert flow.holds == {message}

    taken = 0
    fragments = message.fragments()
    while fed - taken > RELEASE_BYTES:
        taken += len(await anext(fragments))
        assert (message in flow.holds) == (fed - taken > RELEASE_BYTES)
    assert flow.events == ["hold", "release"]


async def test_an_association_ending_mid_data_set_raises_and_releases_the_socket() -> None:
    flow = Reading()
    message = _message(flow)
    for _ in range(HELD_BYTES // 1024 + 1):
        message.feed(memoryview(bytes(1024)), is_last=False)
    assert flow.holds == {message}

    message.cut_short()

    assert flow.holds == set()
    with pytest.raises(ProtocolError):
        await message.read_data_set()
