"""P-DATA-TF framing: PDV items read off a stream, fragmented and reassembled (PS3.8 9.3.5)."""

import asyncio
import struct

import pytest

from pacs.net.pdu import MAX_FRAGMENT, PduError, PduType, pdata_header, read_pdata, read_pdu_header


def _stream(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def _pdv(context_id: int, control: int, data: bytes) -> bytes:
    return struct.pack(">LBB", len(data) + 2, context_id, control) + data


async def _fragments(pdu: bytes) -> list[tuple[int, bool, bool, bytes]]:
    reader = _stream(pdu)
    pdu_type, length = await read_pdu_header(reader.readexactly)
    assert pdu_type == PduType.P_DATA_TF
    return [
        (f.context_id, f.is_command, f.is_last, f.data)
        async for f in read_pdata(reader.readexactly, length)
    ]


async def test_one_pdu_with_a_command_and_a_data_set_pdv_yields_both_in_order() -> None:
    body = _pdv(1, 0x03, b"command") + _pdv(1, 0x02, b"dataset")
    pdu = struct.pack(">BxL", 0x04, len(body)) + body

    assert await _fragments(pdu) == [(1, True, True, b"command"), (1, False, True, b"dataset")]


async def test_pdata_header_frames_a_pdv_that_reads_back_unchanged() -> None:
    pdu = pdata_header(5, 0x00, 4) + b"abcd"

    assert await _fragments(pdu) == [(5, False, False, b"abcd")]


async def test_a_pdv_longer_than_a_fragment_is_split_and_only_its_end_is_last() -> None:
    data = bytes(range(256)) * (MAX_FRAGMENT // 256 * 2 + 1)
    pdu = pdata_header(3, 0x02, len(data)) + data

    fragments = await _fragments(pdu)

    assert len(fragments) == 3
    assert [f[2] for f in fragments] == [False, False, True]
    assert b"".join(f[3] for f in fragments) == data


async def test_an_empty_last_pdv_still_carries_the_last_bit() -> None:
    pdu = pdata_header(1, 0x02, 0)

    assert await _fragments(pdu) == [(1, False, True, b"")]


@pytest.mark.parametrize(
    "body",
    [
        struct.pack(">LBB", 100, 1, 0) + b"short",  # item longer than its PDU
        struct.pack(">LBB", 1, 1, 0),  # item too short to hold its own header
        _pdv(1, 0, b"ok") + b"\x00\x00",  # stray bytes after the last item
    ],
)
async def test_malformed_pdv_items_are_protocol_errors(body: bytes) -> None:
    pdu = struct.pack(">BxL", 0x04, len(body)) + body

    with pytest.raises(PduError):
        await _fragments(pdu)


async def test_a_pdu_cut_short_raises_incomplete_read() -> None:
    pdu = pdata_header(1, 0x02, 10) + b"12345"

    with pytest.raises(asyncio.IncompleteReadError):
        await _fragments(pdu)
