"""Command sets by hand (PS3.7 E.1): Implicit VR Little Endian, group 0000.

Every DIMSE message carries one, and a retrieve sends two per instance (the
C-STORE-RQ and a Pending response): pydicom's general writer cost more than
sending the instance's bytes. A command set uses a handful of VRs, so it is
encoded here in one pass (anything unexpected falls back to pydicom), and
decoded by splitting it into raw elements that pydicom converts on access.
"""

import struct
from collections.abc import Iterable
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pynetdicom.dsutils import encode

from pacs.errors import ProtocolError

_ELEMENT_HEADER = struct.Struct("<HHI")
_STRING_PAD = {"UI": b"\x00", "AE": b" ", "LO": b" ", "ST": b" ", "CS": b" ", "SH": b" "}


class _NotSimple(Exception):
    """An element this encoder does not handle: pydicom encodes the command set instead."""


def _values(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes | int):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    return [value]


def _value_bytes(vr: str, value: Any) -> bytes:
    values = _values(value)
    if vr == "US":
        return struct.pack(f"<{len(values)}H", *(int(v) for v in values))
    if vr == "UL":
        return struct.pack(f"<{len(values)}I", *(int(v) for v in values))
    if vr == "AT":
        tags = [int(v) for v in values]
        return b"".join(struct.pack("<HH", tag >> 16, tag & 0xFFFF) for tag in tags)
    pad = _STRING_PAD.get(vr)
    if pad is None or not all(isinstance(v, str) for v in values):
        raise _NotSimple(vr)
    raw = "\\".join(str(v) for v in values).encode("latin-1", errors="replace")
    return raw + pad if len(raw) % 2 else raw


def encode_command(command: Dataset) -> bytes:
    """Encode a command set with its group length (which `command` then holds too)."""
    if "CommandGroupLength" in command:
        del command.CommandGroupLength
    try:
        body = b"".join(
            _ELEMENT_HEADER.pack(element.tag >> 16, element.tag & 0xFFFF, len(value)) + value
            for element in command
            for value in (_value_bytes(element.VR, element.value),)
        )
    except _NotSimple:
        return _encode_with_pydicom(command)
    command.CommandGroupLength = len(body)
    return _ELEMENT_HEADER.pack(0x0000, 0x0000, 4) + struct.pack("<I", len(body)) + body


def _encode_with_pydicom(command: Dataset) -> bytes:
    body = encode(command, True, True)
    if body is None:
        raise ProtocolError("command set could not be encoded")
    command.CommandGroupLength = len(body)
    encoded = encode(command, True, True)
    assert encoded is not None
    return bytes(encoded)


def decode_command_set(data: bytes) -> Dataset:
    """Split a received command set into its elements; raise ProtocolError when it is not one.

    Values stay raw until read (pydicom converts them, with the VR from its dictionary).
    """
    elements: dict[BaseTag, DataElement | RawDataElement] = {}
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < _ELEMENT_HEADER.size:
            raise ProtocolError("undecodable command set: truncated element header")
        group, element, length = _ELEMENT_HEADER.unpack_from(data, offset)
        offset += _ELEMENT_HEADER.size
        if group != 0x0000 or length > end - offset:
            raise ProtocolError(
                f"undecodable command set: element ({group:04X},{element:04X}) of "
                f"{length} bytes at offset {offset - _ELEMENT_HEADER.size}"
            )
        tag = BaseTag(element)
        elements[tag] = RawDataElement(
            tag, None, length, data[offset : offset + length], offset, True, True
        )
        offset += length
    return Dataset(elements)
