"""Received PDUs parsed in place: PDV items however the bytes are split (PS3.8 9.3.5-9.3.8)."""

import struct
from dataclasses import dataclass, field

import pytest

from pacs.net.pdata import PduParser
from pacs.net.pdu import AbortReason, PduError, pdata_header

RELEASE_RQ = bytes([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0])


@dataclass
class Collected:
    """A PduSink that keeps what it is handed: fragments as copies, control PDUs whole."""

    fragments: list[tuple[int, int, bool, bytes]] = field(default_factory=list)
    controls: list[tuple[int, bytes]] = field(default_factory=list)
    go_on: bool = True

    def fragment(self, context_id: int, control: int, is_last: bool, data: memoryview) -> None:
        self.fragments.append((context_id, control, is_last, bytes(data)))

    def control_pdu(self, pdu_type: int, body: bytes) -> bool:
        self.controls.append((pdu_type, body))
        return self.go_on

    def joined(self) -> list[tuple[int, int, bool, bytes]]:
        """Adjacent pieces of one PDV joined, as a split-free read would hand them on."""
        out: list[tuple[int, int, bool, bytes]] = []
        for context_id, control, is_last, data in self.fragments:
            if out and not out[-1][2] and out[-1][:2] == (context_id, control) and data:
                previous = out.pop()
                out.append((context_id, control, is_last, previous[3] + data))
            else:
                out.append((context_id, control, is_last, data))
        return out


def _pdv(context_id: int, control: int, data: bytes) -> bytes:
    return struct.pack(">LBB", len(data) + 2, context_id, control) + data


def _pdu(*pdvs: bytes) -> bytes:
    body = b"".join(pdvs)
    return struct.pack(">BxL", 0x04, len(body)) + body


def _parse_in_reads(data: bytes, reads: list[int], sink: Collected) -> int:
    """Feed `data` as successive reads of the given sizes into one growing buffer, as the
    connection does; return how many bytes were left unparsed."""
    view = memoryview(bytearray(data))
    parser = PduParser(sink)
    start = end = 0
    for size in reads:
        end += size
        start = parser.parse(view, start, end)
    return end - start


def test_one_pdu_with_a_command_and_a_data_set_pdv_hands_on_both_in_order() -> None:
    sink = Collected()
    pdu = _pdu(_pdv(1, 0x03, b"command"), _pdv(1, 0x02, b"dataset"))

    assert _parse_in_reads(pdu, [len(pdu)], sink) == 0
    assert sink.fragments == [(1, 0x03, True, b"command"), (1, 0x02, True, b"dataset")]


def test_pdata_header_frames_a_pdv_that_parses_back_unchanged() -> None:
    sink = Collected()
    pdu = pdata_header(5, 0x00, 4) + b"abcd"

    _parse_in_reads(pdu, [len(pdu)], sink)

    assert sink.fragments == [(5, 0x00, False, b"abcd")]


def test_every_split_of_the_bytes_gives_the_same_pdvs() -> None:
    stream = (
        _pdu(_pdv(1, 0x01, b"comm"), _pdv(1, 0x03, b"and"))
        + _pdu(_pdv(1, 0x00, bytes(range(40))))
        + _pdu(_pdv(1, 0x02, b"end"), _pdv(3, 0x03, b"next"))
        + RELEASE_RQ
    )
    whole = Collected()
    _parse_in_reads(stream, [len(stream)], whole)

    for cut in range(1, len(stream)):
        for second in (cut, cut + 1):
            sizes = [cut, max(0, second - cut), len(stream) - max(cut, second)]
            split = Collected()
            assert _parse_in_reads(stream, sizes, split) == 0
            assert split.joined() == whole.fragments, sizes
            assert split.controls == whole.controls == [(0x05, b"\x00" * 4)]


def test_a_pdv_data_piece_is_handed_on_as_soon_as_it_arrives_and_only_its_end_is_last() -> None:
    sink = Collected()
    data = bytes(range(256)) * 4
    pdu = pdata_header(3, 0x02, len(data)) + data

    _parse_in_reads(pdu, [12 + 100, 500, len(pdu) - 612], sink)

    assert [(len(f[3]), f[2]) for f in sink.fragments] == [(100, False), (500, False), (424, True)]
    assert b"".join(f[3] for f in sink.fragments) == data


def test_handed_on_views_are_of_the_received_bytes_not_copies() -> None:
    views: list[memoryview] = []

    class Keep(Collected):
        def fragment(self, context_id: int, control: int, is_last: bool, data: memoryview) -> None:
            views.append(data)

    received = bytearray(pdata_header(1, 0x02, 3) + b"xyz")
    PduParser(Keep()).parse(memoryview(received), 0, len(received))
    received[-3:] = b"abc"

    assert bytes(views[0]) == b"abc"


def test_an_empty_last_pdv_still_carries_the_last_bit() -> None:
    sink = Collected()
    pdu = pdata_header(1, 0x02, 0)

    _parse_in_reads(pdu, [len(pdu)], sink)

    assert sink.fragments == [(1, 0x02, True, b"")]


def test_a_partial_header_is_left_unparsed_until_the_rest_arrives() -> None:
    sink = Collected()
    pdu = pdata_header(1, 0x02, 2) + b"ok"

    assert _parse_in_reads(pdu, [4], sink) == 4
    assert sink.fragments == []


def test_parsing_stops_after_a_control_pdu_that_ends_the_association() -> None:
    sink = Collected(go_on=False)
    abort = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 1])
    stream = abort + pdata_header(1, 0x02, 2) + b"ok"

    _parse_in_reads(stream, [len(stream)], sink)

    assert sink.controls == [(0x07, bytes([0, 0, 2, 1]))]
    assert sink.fragments == []


@pytest.mark.parametrize(
    "body",
    [
        struct.pack(">LBB", 100, 1, 0) + b"short",  # item longer than its PDU
        struct.pack(">LBB", 1, 1, 0),  # item too short to hold its own header
        _pdv(1, 0, b"ok") + b"\x00\x00",  # stray bytes after the last item
    ],
)
def test_malformed_pdv_items_are_protocol_errors(body: bytes) -> None:
    pdu = struct.pack(">BxL", 0x04, len(body)) + body

    with pytest.raises(PduError):
        _parse_in_reads(pdu, [len(pdu)], Collected())


@pytest.mark.parametrize(
    ("pdu_type", "reason"),
    [(0x01, AbortReason.UNEXPECTED_PDU), (0x47, AbortReason.UNRECOGNIZED_PDU)],
)
def test_a_pdu_type_not_expected_on_an_established_association_is_a_protocol_error(
    pdu_type: int, reason: AbortReason
) -> None:
    pdu = struct.pack(">BxL", pdu_type, 4) + b"\x00" * 4

    with pytest.raises(PduError) as raised:
        _parse_in_reads(pdu, [len(pdu)], Collected())

    assert raised.value.reason == reason


def test_an_overlong_release_request_is_a_protocol_error() -> None:
    pdu = struct.pack(">BxL", 0x05, 1 << 20)

    with pytest.raises(PduError):
        _parse_in_reads(pdu, [len(pdu)], Collected())
