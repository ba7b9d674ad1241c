"""DICOM JSON (PS3.18 F.2) of the plain element values of a header, straight from their bytes.

Only what pydicom would read without a question: ASCII text in a character set
that leaves ASCII as it is, strings that pass pydicom's own checks for their VR,
little-endian binary numbers, tags (AT) and small OB or OW values. For anything
else `value_json` returns None and the caller asks pydicom, so the JSON is pydicom's
`to_json_dict` either way (tests/unit/test_header_scan.py compares the two on every
pydicom test file).
"""

import base64
import math
import re
import struct
from collections.abc import Callable
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.valuerep import BYTE_VR_REGEXES, MAX_VALUE_LEN

JsonElement = dict[str, Any]
# Values of these character sets decode ASCII bytes to the same characters.
ASCII_CHARSETS = frozenset({b"", b"ISO_IR 6", b"ISO_IR 100", b"ISO_IR 192"})
_PRINTABLE = re.compile(rb"[\x20-\x5b\x5d-\x7e]*")  # ASCII without controls or backslash
_TEXT = re.compile(rb"[\x20-\x7e\t\n\f\r]*")  # ASCII, lines and tabs
_NAME = re.compile(rb"[\x21-\x3c\x3e-\x5b\x5d-\x7e]([\x20-\x3c\x3e-\x5b\x5d-\x7e]*[\x21-\x7e])?")
_NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}
_SIZES = {vr: struct.calcsize("<" + code) for vr, code in _NUMBERS.items()}
_IS = BYTE_VR_REGEXES["IS"]
_DS = BYTE_VR_REGEXES["DS"]


def _valid(vr: str, item: bytes) -> bool:
    regex = BYTE_VR_REGEXES.get(vr)
    if regex is not None and regex.match(item) is None:
        return False
    return len(item) <= MAX_VALUE_LEN.get(vr, len(item))


def _split(vr: str, items: list[bytes]) -> JsonElement | None:
    """Values of a string VR, or None when pydicom has to decide (an empty or odd value)."""
    if len(items) > 1 and not all(items):
        return None
    if not all(_valid(vr, item) and _PRINTABLE.fullmatch(item) for item in items):
        return None
    return {"vr": vr, "Value": [item.decode() for item in items]}


def _code_string(vr: str, raw: bytes, _text: bool) -> JsonElement | None:
    # pydicom: trailing padding off the whole value, then split (values.multi_string).
    stripped = raw.rstrip(b" \x00")
    if not stripped:
        return {"vr": vr}
    return _split(vr, stripped.split(b"\\"))


def _uid(vr: str, raw: bytes, _text: bool) -> JsonElement | None:
    stripped = raw.rstrip(b"\x00 ")
    if not stripped:
        return {"vr": vr}
    return _split(vr, stripped.split(b"\\"))


def _short_text(vr: str, raw: bytes, text: bool) -> JsonElement | None:
    # pydicom: split first, then trailing padding off each value (values.convert_text).
    if not text:
        return None
    items = [item.rstrip(b"\x00 ") for item in raw.split(b"\\")]
    if len(items) == 1 and not items[0]:
        return {"vr": vr}
    if any(len(item) > MAX_VALUE_LEN.get(vr, len(item)) for item in raw.split(b"\\")):
        return None
    return _split(vr, items)


def _long_text(vr: str, raw: bytes, text: bool) -> JsonElement | None:
    # pydicom: one value, backslash included, trailing padding off (values.convert_single_string).
    stripped = raw.rstrip(b"\x00 ")
    if not text or not _TEXT.fullmatch(stripped) or len(raw) > MAX_VALUE_LEN.get(vr, len(raw)):
        return None
    return {"vr": vr, "Value": [stripped.decode()]} if stripped else {"vr": vr}


def _person_name(vr: str, raw: bytes, text: bool) -> JsonElement | None:
    if not text:
        return None
    stripped = raw.rstrip(b"\x00 ")
    if not stripped:
        return {"vr": vr}
    items = stripped.split(b"\\")
    # One component group of plain ASCII: pydicom's PersonName keeps it as it is.
    if not all(len(item) <= 64 and _NAME.fullmatch(item) for item in items):
        return None
    return {"vr": vr, "Value": [{"Alphabetic": item.decode()} for item in items]}


def _integer_string(vr: str, raw: bytes, _text: bool) -> JsonElement | None:
    stripped = raw.rstrip(b" \x00")
    if not stripped.strip():
        return None if stripped else {"vr": vr}
    items = stripped.split(b"\\")
    if not all(len(item) <= 12 and _IS.match(item) for item in items):
        return None
    return {"vr": vr, "Value": [int(item) for item in items]}


def _decimal_string(vr: str, raw: bytes, _text: bool) -> JsonElement | None:
    stripped = raw.strip()
    if not stripped:
        return {"vr": vr} if not raw.strip(b" \x00") else None
    items = stripped.split(b"\\")
    if not all(len(item) <= 16 and _DS.match(item) for item in items):
        return None
    values = [float(item) for item in items]
    if not all(math.isfinite(value) for value in values):
        return None
    return {"vr": vr, "Value": values}


def _binary_number(vr: str, raw: bytes, _text: bool) -> JsonElement | None:
    size = _SIZES[vr]
    if not raw:
        return {"vr": vr}
    if len(raw) % size:
        return None
    values = list(struct.unpack(f"<{len(raw) // size}{_NUMBERS[vr]}", raw))
    if vr in ("FL", "FD"):
        return {"vr": vr, "Value": [float(value) for value in values]}
    return {"vr": vr, "Value": values}


def _attribute_tag(vr: str, raw: bytes, _text: bool) -> JsonElement | None:
    if not raw or len(raw) % 4:
        return None
    pairs = struct.iter_unpack("<HH", raw)
    tags = [f"{group << 16 | element:08X}" for group, element in pairs]
    return {"vr": vr, "Value": tags}


def _binary(vr: str, raw: bytes, _text: bool) -> JsonElement | None:
    # pydicom keeps these values as bytes; to_json_dict with pacs's bulk handler writes
    # an empty BulkDataURI above 3/4 of the 1024-byte threshold (base64 makes 4 of 3).
    if not raw:
        return {"vr": vr}
    if len(raw) > 768:
        return {"vr": vr, "BulkDataURI": ""}
    return {"vr": vr, "InlineBinary": base64.b64encode(raw).decode()}


_Converter = Callable[[str, bytes, bool], JsonElement | None]
_CONVERTERS: dict[str, _Converter] = {
    "AS": _code_string,
    "CS": _code_string,
    "DA": _code_string,
    "DT": _code_string,
    "TM": _code_string,
    "UI": _uid,
    "LO": _short_text,
    "SH": _short_text,
    "UC": _short_text,
    "LT": _long_text,
    "ST": _long_text,
    "UT": _long_text,
    "PN": _person_name,
    "IS": _integer_string,
    "DS": _decimal_string,
    **dict.fromkeys(_NUMBERS, _binary_number),
    "AT": _attribute_tag,
    "OB": _binary,
    "OW": _binary,
}


# Dictionary VRs that pydicom resolves from other elements, all of them binary.
BINARY_AMBIGUOUS = frozenset({"OB or OW"})
_implicit_vrs: dict[int, str | None] = {}


def implicit_vr(tag: int) -> str | None:
    """The dictionary VR pydicom gives an implicit VR element, or None when it needs more:
    private elements (their creator decides), unknown tags and ambiguous VRs other than
    OB or OW (which is binary either way)."""
    if tag in _implicit_vrs:
        return _implicit_vrs[tag]
    vr: str | None = None
    if not tag >> 16 & 1:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = None
    if vr is not None and " or " in vr and vr not in BINARY_AMBIGUOUS:
        vr = None
    if len(_implicit_vrs) < 4096:
        _implicit_vrs[tag] = vr
    return vr


def value_json(vr: str, raw: bytes, ascii_text: bool) -> JsonElement | None:
    """The element's DICOM JSON as pydicom writes it, or None when pydicom must convert it.

    `ascii_text` says that the data set's character set decodes ASCII as ASCII, so
    that text VRs (SH, LO, UC, LT, ST, UT, PN) holding only ASCII can be read here.
    """
    converter = _CONVERTERS.get(vr)
    return None if converter is None else converter(vr, raw, ascii_text)
