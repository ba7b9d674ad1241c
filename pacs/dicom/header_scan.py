"""A received header's level attributes from one walk over its bytes, pydicom where needed.

The index needs each level's DICOM JSON (what `header.split_by_level` builds) after
the same checks `header.read_header` makes. For data sets in a little-endian,
not deflated syntax, one walk (`element_scan`) checks completeness and finds the
top-level elements, plain values are converted from their bytes (`value_json`)
and sequences by pydicom from their own bytes (`sequence_json`). When an element
needs more (UN, a private element in implicit VR, text outside ASCII...), the data
set is parsed by pydicom too, as before, and those elements are converted from it:
the result is the same either way. Other syntaxes take pydicom's path whole.
"""

import io
import mmap
from typing import Any, BinaryIO

from pydicom.dataset import Dataset
from pydicom.uid import UID, AllTransferSyntaxes

from pacs.dicom.element_scan import KNOWN_VRS, Buffer, Element, TopLevel, scan
from pacs.dicom.header import (
    BINARY_VRS,
    BULK_THRESHOLD,
    REQUIRED_TAGS,
    check_identity,
    check_uids,
    element_value,
    parse_header,
    placement,
    read_header,
    split_by_level,
)
from pacs.dicom.levels import QueryLevel
from pacs.dicom.pixel_layout import Layout, layout_from_scan
from pacs.dicom.sequence_json import sequence_json
from pacs.dicom.structure import UNDEFINED
from pacs.dicom.value_json import (
    ASCII_CHARSETS,
    BINARY_AMBIGUOUS,
    JsonElement,
    implicit_vr,
    value_json,
)
from pacs.errors import InvalidInstance

Levels = dict[QueryLevel, dict[str, Any]]
SPECIFIC_CHARACTER_SET = 0x00080005
SOP_CLASS_UID, SOP_INSTANCE_UID = 0x00080016, 0x00080018
# The syntaxes scanned here, each with whether it is implicit VR: little endian, not deflated.
_SCANNED = {
    str(uid): UID(uid).is_implicit_VR
    for uid in AllTransferSyntaxes
    if UID(uid).is_little_endian and not UID(uid).is_deflated
}
# JSON of plain values by VR, bytes and character set: the instances of a series repeat
# most of their values byte for byte.
_seen: dict[tuple[str, bytes, bool], JsonElement] = {}
SEEN_ENTRIES = 8192
SEEN_VALUE_BYTES = 256


def _fast_json(buf: Buffer, element: Element, vr: str | None, text: bool) -> JsonElement | None:
    """The element's JSON; {} for bulk data that is left out; None when pydicom must convert it."""
    _, start, length, _, _ = element
    if vr is None or length == UNDEFINED:
        return None
    if vr in BINARY_VRS or vr in BINARY_AMBIGUOUS:
        if length > BULK_THRESHOLD and vr != "UN":
            return {}  # bulk data, left out whatever pydicom would call its VR
        if vr in BINARY_AMBIGUOUS:
            return None
    raw = bytes(buf[start : start + length])
    key = (vr, raw, text)
    value = _seen.get(key)
    if value is None:
        value = value_json(vr, raw, text)
        if value is not None and len(raw) <= SEEN_VALUE_BYTES:
            if len(_seen) >= SEEN_ENTRIES:
                _seen.clear()
            _seen[key] = value
    return value


def _character_set(buf: Buffer, top: TopLevel, implicit: bool) -> tuple[bytes, bool]:
    """The Specific Character Set element as encoded (b"" when absent), and whether that
    character set reads ASCII bytes as ASCII."""
    charset = top.elements.get(SPECIFIC_CHARACTER_SET)
    if charset is None:
        return b"", True
    vr, start, length, head, end = charset
    if length == UNDEFINED or vr != (None if implicit else b"CS"):
        return b"", False
    return bytes(buf[head:end]), bytes(buf[start:end]).rstrip(b" ") in ASCII_CHARSETS


def _values(buf: Buffer, top: TopLevel, implicit: bool) -> dict[int, JsonElement | None] | None:
    """Each top-level element's JSON by tag in ascending order, or None for pydicom's path."""
    charset, text = _character_set(buf, top, implicit)
    values: dict[int, JsonElement | None] = {}
    tags = top.elements if top.ascending else sorted(top.elements)
    for tag in tags:
        element = top.elements[tag]
        if element[0] is None:
            vr = implicit_vr(tag)
        else:
            vr = KNOWN_VRS.get(element[0])
            if vr is None:
                return None
        if tag >> 16 == 0xFFFE:
            return None
        if vr == "SQ":
            values[tag] = sequence_json(buf, tag, element, charset, implicit)
        else:
            values[tag] = _fast_json(buf, element, vr, text)
    return values


def _missing(buf: Buffer, top: TopLevel) -> list[str]:
    missing = []
    for keyword, tag in REQUIRED_TAGS:
        element = top.elements.get(tag)
        if element is None or not bytes(buf[element[1] : element[1] + element[2]]).strip(b"\x00 "):
            missing.append(keyword)
    return missing


def _single_uid(value: JsonElement | None) -> str | None:
    if value is None or value.get("vr") != "UI" or len(value.get("Value", ())) != 1:
        return None
    return str(value["Value"][0])


def _place(values: dict[int, JsonElement | None], dataset: Dataset | None) -> Levels:
    """Split as `split_by_level` does; elements without a value are converted by pydicom."""
    parts: Levels = {level: {} for level in QueryLevel}
    charset = "" if dataset is None else str(dataset.get("SpecificCharacterSet", ""))
    for tag, found in values.items():
        value = found
        if value is None:
            assert dataset is not None
            value = _pydicom_json(dataset, tag, charset)
        if not value:
            continue
        json_key, level = placement(tag)
        if level is None:
            for part in parts.values():
                part[json_key] = value
        else:
            parts[level][json_key] = value
    return parts


def _pydicom_json(dataset: Dataset, tag: int, charset: str) -> JsonElement:
    """One element converted as `split_by_level` converts it ({} for bulk data)."""
    try:
        return element_value(dataset, dataset.get_item(tag), charset) or {}
    except Exception as exc:
        raise InvalidInstance(f"attribute values cannot be decoded: {exc}") from exc


def _scanned(
    buf: Buffer, start: int, implicit: bool, uids: tuple[str, str], fp: BinaryIO
) -> tuple[Levels, TopLevel]:
    """Levels of a data set in `buf` from `start`, and its top level as walked; `fp` holds
    the same bytes for pydicom."""
    top = scan(buf, start, implicit)
    return _levels(buf, top, implicit, uids, (fp, start)), top


def _levels(
    buf: Buffer, top: TopLevel, implicit: bool, uids: tuple[str, str], at: tuple[BinaryIO, int]
) -> Levels:
    fp, start = at
    values = _values(buf, top, implicit)
    sop_class = _single_uid(values.get(SOP_CLASS_UID)) if values else None
    sop_instance = _single_uid(values.get(SOP_INSTANCE_UID)) if values else None
    if values is None or None in values.values() or not sop_class or not sop_instance:
        fp.seek(start)
        dataset = parse_header(fp, implicit, little=True)
        check_identity(dataset, *uids)
        if values is None:
            return split_by_level(dataset)
        return _place(values, dataset)
    missing = _missing(buf, top)
    if missing:
        raise InvalidInstance(f"the data set has no {', '.join(missing)}")
    check_uids(sop_class, sop_instance, *uids)
    return _place(values, None)


def read_levels(
    source: bytes | BinaryIO, transfer_syntax: str, sop_class_uid: str, sop_instance_uid: str
) -> Levels:
    """Check a received data set and return its attributes per level, as the index keeps them.

    `source` is the data set's bytes, or a file positioned at its start and ending with it.
    Raises InvalidInstance for a data set that is cut short, cannot be parsed or lacks a
    required UID, and DataSetMismatch when it is not the announced SOP Instance.
    """
    return read_instance(source, transfer_syntax, sop_class_uid, sop_instance_uid, 0)[0]


def read_instance(
    source: bytes | BinaryIO,
    transfer_syntax: str,
    sop_class_uid: str,
    sop_instance_uid: str,
    file_offset: int,
) -> tuple[Levels, Layout | None]:
    """`read_levels`, and where the bulk data and frames lie (`pixel_layout`) for the
    syntaxes walked here (None for others). `file_offset` is where the data set starts
    in its Part 10 file when `source` is its bytes alone."""
    uids = (sop_class_uid, sop_instance_uid)
    implicit = _SCANNED.get(transfer_syntax)
    if implicit is None:
        fp = io.BytesIO(source) if isinstance(source, bytes) else source
        dataset = read_header(fp, transfer_syntax)
        check_identity(dataset, *uids)
        return split_by_level(dataset), None
    if isinstance(source, bytes):
        levels, top = _scanned(source, 0, implicit, uids, io.BytesIO(source))
        return levels, layout_from_scan(source, top, file_offset)
    start = source.tell()
    # Mapped, not read: the walk seeks over the pixel data, which can be gigabytes.
    with mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        levels, top = _scanned(mapped, start, implicit, uids, source)
        return levels, layout_from_scan(mapped, top, 0)
