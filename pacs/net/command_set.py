"""Command sets by hand (PS3.7 E.1): Implicit VR Little Endian, group 0000.

Every DIMSE message carries one, and a retrieve sends and receives one per
instance, so pydicom's Dataset and writer would weigh on every instance sent.
A command set uses a handful of VRs, so one to send (keyword -> value)
is encoded here in one pass, and a received one is split into raw elements
whose US, UL and string values are decoded when read (anything unexpected
goes through pydicom either way).
"""

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_dict
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pynetdicom.dsutils import encode

from pacs.errors import ProtocolError

_ELEMENT_HEADER = struct.Struct("<HHI")
_STRING_PAD = {"UI": b"\x00", "AE": b" ", "LO": b" ", "ST": b" ", "CS": b" ", "SH": b" "}
# Keyword -> (element number, VR) of every command element (group 0000) pydicom knows.
COMMAND_ELEMENTS: dict[str, tuple[int, str]] = {
    keyword: (tag & 0xFFFF, dictionary_VR(tag))
    for keyword, tag in keyword_dict.items()
    if tag >> 16 == 0x0000
}


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


def encode_command(command: Mapping[str, Any] | Dataset) -> bytes:
    """Encode a command set, given as keyword -> value, with its group length.

    A Dataset is accepted too (it then holds the group length as well).
    """
    if isinstance(command, Dataset):
        return _encode_dataset(command)
    try:
        elements = sorted(
            (COMMAND_ELEMENTS[keyword], value)
            for keyword, value in command.items()
            if keyword != "CommandGroupLength"
        )
        body = b"".join(
            _ELEMENT_HEADER.pack(0x0000, element, len(value)) + value
            for (element, vr), raw in elements
            for value in (_value_bytes(vr, raw),)
        )
    except (_NotSimple, KeyError, TypeError):
        dataset = Dataset()
        for keyword, value in command.items():
            setattr(dataset, keyword, value)
        return _encode_dataset(dataset)
    return _ELEMENT_HEADER.pack(0x0000, 0x0000, 4) + struct.pack("<I", len(body)) + body


def _encode_dataset(command: Dataset) -> bytes:
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


def _split(data: bytes) -> dict[int, bytes]:
    """Element number -> raw value of each element; ProtocolError when it is not a command set."""
    values: dict[int, bytes] = {}
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
        values[element] = data[offset : offset + length]
        offset += length
    return values


_NUMBERS = {"US": struct.Struct("<H"), "UL": struct.Struct("<I")}


class ReceivedCommand:
    """A received command set, read like a Dataset (`get`, attributes, `in`).

    Values of the simple VRs (US, UL, the strings) are decoded straight from the
    raw bytes when read: every message is routed on a few of them, so they skip
    pydicom's Dataset. Anything else is
    read through the Dataset pydicom builds on first need.
    """

    __slots__ = ("_dataset", "_values")

    def __init__(self, data: bytes) -> None:
        self._values = _split(data)
        self._dataset: Dataset | None = None

    def dataset(self) -> Dataset:
        """The command set as a pydicom Dataset (values converted on access)."""
        if self._dataset is None:
            self._dataset = Dataset(
                {
                    BaseTag(element): RawDataElement(
                        BaseTag(element), None, len(raw), raw, 0, True, True
                    )
                    for element, raw in self._values.items()
                }
            )
        return self._dataset

    def get(self, keyword: str, default: Any = None) -> Any:
        element, vr = COMMAND_ELEMENTS.get(keyword, (None, ""))
        if element is None or element not in self._values:
            return default
        raw = self._values[element]
        number = _NUMBERS.get(vr)
        if number is not None and len(raw) == number.size:
            return number.unpack(raw)[0]
        if vr in _STRING_PAD and b"\\" not in raw:
            text = raw.decode("latin-1").rstrip("\x00 ")
            return text.lstrip(" ") if vr in ("AE", "CS") else text
        return self.dataset().get(keyword, default)

    def __getattr__(self, keyword: str) -> Any:
        value = self.get(keyword, _MISSING)
        if value is _MISSING:
            raise AttributeError(f"the command set has no {keyword}")
        return value

    def __contains__(self, keyword: object) -> bool:
        entry = COMMAND_ELEMENTS.get(keyword) if isinstance(keyword, str) else None
        return entry is not None and entry[0] in self._values


_MISSING = object()
