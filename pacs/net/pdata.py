"""Incoming PDUs of an established association, parsed in place (PS3.8 9.3.5, 9.3.6-9.3.8).

The parser is sans-I/O: it is handed the bytes received so far and hands on what
they hold, as soon as they hold it. A P-DATA-TF's PDV data goes out as memoryviews
of the received bytes, however they are split across reads, so a data set reaches
its consumer without being copied or awaited fragment by fragment; the caller must
therefore never overwrite bytes once they are parsed. The few other PDUs
(A-RELEASE-RQ/RP, A-ABORT) are handed on whole.
"""

import struct
from typing import Protocol

from pacs.net.pdu import PDU_HEADER_LENGTH, PDV_HEADER_LENGTH, AbortReason, PduError, PduType

_PDU_HEADER = struct.Struct(">BxL")
_PDV_HEADER = struct.Struct(">LBB")

# A-RELEASE-RQ/RP and A-ABORT bodies are 4 bytes; allow slack, not a data set.
CONTROL_PDU_MAX = 1024
_CONTROL_PDUS = frozenset({PduType.RELEASE_RQ, PduType.RELEASE_RP, PduType.ABORT})


class PduSink(Protocol):
    """Where parsed PDUs go."""

    def fragment(self, context_id: int, control: int, is_last: bool, data: memoryview) -> None:
        """A piece of one PDV; `is_last` when it ends a PDV whose control says "last"."""

    def control_pdu(self, pdu_type: int, body: bytes) -> bool:
        """A whole A-RELEASE or A-ABORT; return False to stop parsing."""


class PduParser:
    """Parses the PDUs that follow the A-ASSOCIATE exchange; state carries across reads."""

    __slots__ = ("_context_id", "_control", "_pdu_left", "_pdv_left", "_sink", "stopped")

    def __init__(self, sink: PduSink) -> None:
        self._sink = sink
        self._pdu_left = 0  # bytes of the current P-DATA-TF not yet parsed
        self._pdv_left = 0  # data bytes of the current PDV not yet handed on
        self._context_id = 0
        self._control = 0
        self.stopped = False  # a control PDU ended the parsing; what follows is ignored

    def parse(self, view: memoryview, start: int, end: int) -> int:
        """Hand on what `view[start:end]` holds; return where unparsed bytes begin.

        Raises PduError for bytes that break PS3.8; the association is then aborted.
        """
        while not self.stopped:
            available = end - start
            if self._pdv_left:
                if not available:
                    break
                size = min(available, self._pdv_left)
                self._pdv_left -= size
                last = not self._pdv_left and self._control & 0x02
                self._sink.fragment(
                    self._context_id, self._control, bool(last), view[start : start + size]
                )
                start += size
            elif self._pdu_left:
                if self._pdu_left < PDV_HEADER_LENGTH:
                    raise PduError(f"P-DATA-TF has {self._pdu_left} stray bytes after its PDV")
                if available < PDV_HEADER_LENGTH:
                    break
                start = self._pdv_header(view, start)
            elif available < PDU_HEADER_LENGTH:
                break
            else:
                taken = self._pdu_header(view, start, end)
                if taken == start:
                    break
                start = taken
        return start

    def _pdv_header(self, view: memoryview, start: int) -> int:
        item_length, self._context_id, self._control = _PDV_HEADER.unpack_from(view, start)
        if item_length < 2 or item_length + 4 > self._pdu_left:
            raise PduError(f"PDV item length {item_length} does not fit its P-DATA-TF")
        self._pdu_left -= item_length + 4
        self._pdv_left = item_length - 2
        if not self._pdv_left:  # an empty PDV: its flags still count
            last = bool(self._control & 0x02)
            self._sink.fragment(self._context_id, self._control, last, view[start:start])
        return start + PDV_HEADER_LENGTH

    def _pdu_header(self, view: memoryview, start: int, end: int) -> int:
        """Take a PDU header (and a control PDU's body); `start` itself when more is needed."""
        pdu_type: int
        length: int
        pdu_type, length = _PDU_HEADER.unpack_from(view, start)
        if pdu_type == PduType.P_DATA_TF:
            self._pdu_left = length
            return start + PDU_HEADER_LENGTH
        if pdu_type not in _CONTROL_PDUS:
            known = pdu_type in PduType._value2member_map_
            raise PduError(
                f"unexpected PDU type 0x{pdu_type:02X}",
                AbortReason.UNEXPECTED_PDU if known else AbortReason.UNRECOGNIZED_PDU,
            )
        if length > CONTROL_PDU_MAX:
            raise PduError(f"PDU type 0x{pdu_type:02X} of {length} bytes is too long")
        body_start = start + PDU_HEADER_LENGTH
        if end - body_start < length:
            return start
        body = bytes(view[body_start : body_start + length])
        if not self._sink.control_pdu(pdu_type, body):
            self.stopped = True
        return body_start + length
