"""Encode a DICOM JSON object (PS3.18 F.2) straight to data set bytes, little endian.

A C-FIND answers every match with an identifier built from the index's JSON;
going through pydicom (Dataset.from_json, then its writer) for each one would
dominate the handler's time per match. The elements of a response are nearly always
strings, person names and numbers: those are encoded here, byte for byte as
pydicom writes them, and anything else (sequences, binary values, AT, empty
values inside a multi-valued element, text needing a character set other than
ASCII or UTF-8) makes `encode_json` return None so that the caller falls back
to pydicom.
"""

import struct
from functools import cache
from typing import Any

from pydicom.valuerep import IS, DSfloat

from pacs.dicom.structure import LONG_VRS

UTF8 = "ISO_IR 192"
_ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UI", "UR"})
_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT"})  # encoded with the character set
_STRINGS = _ASCII_VRS | _TEXT_VRS
_SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})  # a backslash is text, not a delimiter
_BINARY_NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}
_SHORT_MAX = 0xFFFF
_SHORT_LENGTH, _LONG_LENGTH = struct.Struct("<H"), struct.Struct("<I")


class _NotSimple(Exception):
    """An element this encoder leaves to pydicom."""


def _person_name(value: Any) -> str:
    if not isinstance(value, dict):
        raise _NotSimple("PN")
    if "Phonetic" in value:
        parts = 3
    elif "Ideographic" in value:
        parts = 2
    else:
        parts = 1
    keys = ("Alphabetic", "Ideographic", "Phonetic")[:parts]
    return "=".join(str(value.get(key, "")) for key in keys)


def _number_string(vr: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _NotSimple(vr)
    if vr == "IS" and type(value) is int:
        return str(value)  # what IS(value) writes, without building one
    return str(IS(value) if vr == "IS" else DSfloat(value))


def _text_bytes(vr: str, values: list[Any], utf8: bool) -> bytes:
    if vr == "PN":
        text = "\\".join(_person_name(value) for value in values)
    elif vr in ("IS", "DS"):
        text = "\\".join(_number_string(vr, value) for value in values)
    elif all(isinstance(value, str) for value in values):
        if vr in _SINGLE_VALUED and len(values) != 1:
            raise _NotSimple(vr)
        text = "\\".join(values)
    else:
        raise _NotSimple(vr)
    return _encoded_text(vr, text, utf8)


def _encoded_text(vr: str, text: str, utf8: bool) -> bytes:
    if text.isascii():
        raw = text.encode("ascii")
    elif utf8 and vr not in _ASCII_VRS:
        raw = text.encode("utf-8")
    else:
        raise _NotSimple(vr)
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return raw


def _value_bytes(vr: str, element: dict[str, Any], utf8: bool) -> bytes:
    if "Value" not in element:
        if "InlineBinary" in element or "BulkDataURI" in element:
            raise _NotSimple(vr)
        return b""
    values = element["Value"]
    if type(values) is list and len(values) == 1 and type(values[0]) is str and vr in _STRINGS:
        return _encoded_text(vr, values[0], utf8)  # most elements of a response: one string
    if not isinstance(values, list) or not values or any(v is None for v in values):
        raise _NotSimple(vr)
    number = _BINARY_NUMBERS.get(vr)
    if number is not None:
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            raise _NotSimple(vr)
        try:
            return struct.pack(f"<{len(values)}{number}", *values)
        except struct.error as exc:
            raise _NotSimple(vr) from exc
    if vr in _STRINGS or vr in ("PN", "IS", "DS"):
        return _text_bytes(vr, values, utf8)
    raise _NotSimple(vr)


@cache
def _tag_number(key: str) -> int:
    return int(key, 16)


@cache
def _header_prefix(tag: int, vr: str, implicit: bool) -> tuple[bytes, struct.Struct]:
    """An element header's bytes up to its length, and the length's encoding."""
    group, number = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack("<HH", group, number), _LONG_LENGTH
    if vr.encode() in LONG_VRS:
        return struct.pack("<HH2sxx", group, number, vr.encode()), _LONG_LENGTH
    return struct.pack("<HH2s", group, number, vr.encode()), _SHORT_LENGTH


def _header(tag: int, vr: str, length: int, implicit: bool) -> bytes:
    prefix, encoding = _header_prefix(tag, vr, implicit)
    if encoding is _SHORT_LENGTH and length > _SHORT_MAX:
        raise _NotSimple(vr)
    return prefix + encoding.pack(length)


def encode_json(data_set: dict[str, Any], implicit_vr: bool) -> bytes | None:
    """The little-endian encoding of a DICOM JSON object keyed by tag, or None when an
    element needs pydicom. Text other than ASCII is encoded as UTF-8, and only when the
    object's Specific Character Set says so."""
    charset = data_set.get("00080005", {}).get("Value", [])
    utf8 = charset == [UTF8]
    parts: list[bytes] = []
    try:
        for key in sorted(data_set, key=_tag_number):
            element = data_set[key]
            vr = str(element.get("vr", ""))
            value = _value_bytes(vr, element, utf8)
            parts += (_header(_tag_number(key), vr, len(value), implicit_vr), value)
    except (_NotSimple, ValueError, TypeError, AttributeError):
        return None
    return b"".join(parts)
