"""The DICOM JSON Model (PS3.18 F.2) as pacs keeps it: tag keys, and the text of an object.

The index stores each level's attributes as DICOM JSON text, writes it once per instance
and reads it once per C-FIND match: orjson does both in a fraction of the standard
library's time. The standard library
stays behind it for the two things orjson cannot do: write an integer beyond 64 bits (a
malformed IS) and read NaN or Infinity (rows written before orjson may hold them).
orjson writes NaN and infinities as null, the only valid JSON for them (PostgreSQL's
JSONB refused the standard library's NaN), and writes text as UTF-8, never escaped.
"""

import json
from functools import cache
from typing import Any

import orjson
from pydicom.datadict import tag_for_keyword


@cache  # keywords come from the dictionary: a bounded set
def json_key(keyword: str) -> str | None:
    """The object key of an attribute, e.g. "00100020" for PatientID; None for no keyword."""
    tag = tag_for_keyword(keyword)
    return None if tag is None else f"{tag:08X}"


def dumps(value: Any) -> str:
    """The JSON text of a value, non-ASCII text written as it is."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    """The value of a JSON text."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


def value_text(value: Any, vr: str | None) -> str:
    """One value of a DICOM JSON element as DICOM writes it: a person name's groups joined
    by "=" (PS3.5 6.2.1), a number in its decimal form, a null as the empty string."""
    if vr == "PN" and isinstance(value, dict):
        return "=".join(value.get(group, "") for group in PN_GROUPS).rstrip("=")
    return "" if value is None else str(value)


def values_text(element: dict[str, Any] | None) -> list[str] | None:
    """The values of a DICOM JSON element as text; None when it has none."""
    if not element or not (values := element.get("Value")):
        return None
    vr = element.get("vr")
    return [value_text(value, vr) for value in values]
