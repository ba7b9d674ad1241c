"""PDU framing (PS3.8 9.3): PDU types, headers, P-DATA-TF framing for sending, A-ABORT.

The variable-format PDUs (A-ASSOCIATE-RQ/AC/RJ, A-RELEASE, A-ABORT) are
encoded and decoded with pynetdicom's `pdu` classes. P-DATA-TF is framed here
for sending; received PDUs of an established association are parsed in place
by `pdata.py`.
"""

import struct
from collections.abc import Awaitable, Callable
from enum import IntEnum

from pynetdicom.pdu import A_ABORT_RQ, A_RELEASE_RP, A_RELEASE_RQ

from pacs.errors import ProtocolError

_PDU_HEADER = struct.Struct(">BxL")
_PDATA_HEADERS = struct.Struct(">BxLLBB")

PDU_HEADER_LENGTH = _PDU_HEADER.size
PDV_HEADER_LENGTH = 6  # item length (4), context ID (1), message control header (1)


class PduType(IntEnum):
    """PDU types of PS3.8 Table 9-11."""

    ASSOCIATE_RQ = 0x01
    ASSOCIATE_AC = 0x02
    ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    RELEASE_RQ = 0x05
    RELEASE_RP = 0x06
    ABORT = 0x07


class AbortSource(IntEnum):
    """A-ABORT source field (PS3.8 9.3.8)."""

    SERVICE_USER = 0x00
    SERVICE_PROVIDER = 0x02


class AbortReason(IntEnum):
    """A-P-ABORT provider reasons (PS3.8 9.3.8)."""

    NOT_SPECIFIED = 0x00
    UNRECOGNIZED_PDU = 0x01
    UNEXPECTED_PDU = 0x02
    UNRECOGNIZED_PDU_PARAMETER = 0x04
    UNEXPECTED_PDU_PARAMETER = 0x05
    INVALID_PDU_PARAMETER_VALUE = 0x06


class PduError(ProtocolError):
    """A PDU that breaks PS3.8; answered with an A-P-ABORT carrying `reason`."""

    def __init__(self, message: str, reason: AbortReason = AbortReason.INVALID_PDU_PARAMETER_VALUE):
        super().__init__(message)
        self.reason = reason


ReadExactly = Callable[[int], Awaitable[bytes]]


async def read_pdu_header(read: ReadExactly) -> tuple[int, int]:
    """Read a PDU header; return (PDU type, length of what follows)."""
    header = await read(PDU_HEADER_LENGTH)
    pdu_type, length = _PDU_HEADER.unpack(header)
    return pdu_type, length


def frame(pdu_type: int, body: bytes) -> bytes:
    """Prefix a PDU body with its header."""
    return _PDU_HEADER.pack(pdu_type, len(body)) + body


def pdata_header(context_id: int, control: int, data_length: int) -> bytes:
    """Header of a P-DATA-TF PDU carrying one PDV of `data_length` bytes."""
    return _PDATA_HEADERS.pack(
        PduType.P_DATA_TF, data_length + PDV_HEADER_LENGTH, data_length + 2, context_id, control
    )


def pdata_parts(
    context_id: int, control: int, data: bytes | memoryview, *, last: bool, max_pdv: int
) -> list[bytes | memoryview]:
    """The P-DATA-TF PDUs of one message part (command or data), as pieces to write.

    All the PDUs of a part go out in one write: a write per PDU header and per
    piece meant two send() calls per PDU, and peers often accept 16 KiB PDUs.
    """
    view = memoryview(data)
    offset = 0
    parts: list[bytes | memoryview] = []
    while True:
        piece = view[offset : offset + max_pdv]
        offset += len(piece)
        final = offset >= len(view)
        flags = control | (0x02 if final and last else 0x00)
        parts += (pdata_header(context_id, flags, len(piece)), piece)
        if final:
            return parts


def message_parts(
    context_id: int, command: bytes, data_set: bytes | memoryview, max_pdv: int
) -> list[bytes | memoryview]:
    """The PDUs of a command and its data set, to go out in one write."""
    parts = pdata_parts(context_id, 0x01, command, last=True, max_pdv=max_pdv)
    return parts + pdata_parts(context_id, 0x00, data_set, last=True, max_pdv=max_pdv)


def encode_release_rq() -> bytes:
    return bytes(A_RELEASE_RQ().encode())


def encode_release_rp() -> bytes:
    return bytes(A_RELEASE_RP().encode())


def encode_abort(source: AbortSource, reason: AbortReason = AbortReason.NOT_SPECIFIED) -> bytes:
    """A-ABORT PDU; the reason is only meaningful when the provider aborts."""
    pdu = A_ABORT_RQ()
    pdu.source = int(source)
    pdu.reason_diagnostic = int(reason) if source == AbortSource.SERVICE_PROVIDER else 0
    return bytes(pdu.encode())


def describe_abort(source: int, reason: int) -> str:
    """A received A-ABORT's source and reason in words (PS3.8 9.3.8)."""
    if source == AbortSource.SERVICE_USER:
        return "A-ABORT from the peer's application"
    if source == AbortSource.SERVICE_PROVIDER and reason in AbortReason._value2member_map_:
        words = AbortReason(reason).name.lower().replace("_", " ")
        return f"A-P-ABORT: {words.replace('pdu', 'PDU')}"
    return f"A-ABORT source {source}, reason {reason}"


def decode_abort(body: bytes) -> tuple[int, int]:
    """Return (source, reason) of a received A-ABORT body."""
    pdu = A_ABORT_RQ()
    pdu.decode(frame(PduType.ABORT, body))
    return int(pdu.source or 0), int(pdu.reason_diagnostic or 0)
