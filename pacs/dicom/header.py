"""Read what the index needs from a received data set through pydicom: the attributes
before pixel data. `pacs.dicom.header_scan` reads most headers without it and asks
this module for what only pydicom can convert."""

import io
import zlib
from typing import Any, BinaryIO

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from pacs.dicom.levels import EVERY_LEVEL, QueryLevel, level_of
from pacs.dicom.structure import check_complete
from pacs.errors import DataSetMismatch, InvalidInstance

# Binary values larger than this stay in the file only (they are bulk data, not index material).
BULK_THRESHOLD = 1024
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
CACHEABLE_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN", "SH", "SL", "SS"}
    | {"ST", "SV", "TM", "UC", "UI", "UL", "UR", "US", "UT", "UV"}
)
PIXEL_DATA_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
REQUIRED_TAGS = tuple((keyword, int(Tag(keyword))) for keyword in REQUIRED)


def _at_pixel_data(tag: BaseTag, _vr: str | None, _length: int) -> bool:
    return tag in PIXEL_DATA_TAGS


def read_header(fp: BinaryIO, transfer_syntax: str) -> Dataset:
    """Parse the data set from fp's position to its end, up to its pixel data, after checking
    that the whole data set is there; raise InvalidInstance if it is not, or cannot be parsed.

    fp holds the data set alone or a Part 10 file positioned after its File Meta Information:
    the caller knows the transfer syntax, so nothing is read twice. Blocking when fp is a
    file (run it in a worker thread). Pixel data is never read into memory.
    """
    syntax = UID(transfer_syntax)
    start = fp.tell()
    if syntax == DeflatedExplicitVRLittleEndian:
        # PS3.5 A.5: the whole data set is deflated, so it cannot be walked in place.
        try:
            fp = io.BytesIO(zlib.decompress(fp.read(), -zlib.MAX_WBITS))
        except zlib.error as exc:
            raise InvalidInstance(f"the deflated data set cannot be inflated: {exc}") from exc
        start, implicit, little = 0, False, True
    else:
        implicit, little = syntax.is_implicit_VR, syntax.is_little_endian
    check_complete(fp, start, implicit, little)
    fp.seek(start)
    return parse_header(fp, implicit, little)


def parse_header(fp: BinaryIO, implicit: bool, little: bool) -> Dataset:
    """Parse a whole data set from fp's position up to its pixel data; raise InvalidInstance
    if it cannot be parsed or lacks a required UID."""
    try:
        dataset = read_dataset(fp, implicit, little, stop_when=_at_pixel_data)
    except Exception as exc:
        raise InvalidInstance(f"the data set cannot be parsed: {exc}") from exc
    missing = [keyword for keyword, tag in REQUIRED_TAGS if not _has_value(dataset, tag)]
    if missing:
        raise InvalidInstance(f"the data set has no {', '.join(missing)}")
    return dataset


def _has_value(dataset: Dataset, tag: int) -> bool:
    """Whether a UID element is present with a value other than padding.

    Read from the element's bytes while it is still raw: converting it here would
    validate and build the UID only for `split_by_level` to convert it again.
    """
    if tag not in dataset:
        return False
    element = dataset.get_item(tag)
    if isinstance(element, RawDataElement):
        return bool(element.value and element.value.strip(b"\x00 "))
    return bool(str(element.value or "").strip())


def _is_bulk(element: DataElement) -> bool:
    return element.VR in BINARY_VRS and len(element.value or b"") > BULK_THRESHOLD


# DICOM JSON of element values already converted, by everything the conversion depends on:
# the instances of a series repeat most of their header byte for byte, so converting
# each with pydicom again would redo the same work for every instance.
_converted: dict[tuple[Any, ...], dict[str, Any]] = {}
CACHE_ENTRIES = 8192
CACHED_VALUE_BYTES = 256


def _cache_key(raw: RawDataElement, charset: str) -> tuple[Any, ...] | None:
    """The key of a raw element whose JSON depends only on its own bytes, else None.

    Left out: private elements (their VR depends on the private creator), sequences,
    UN, VRs that depend on other elements (US or SS...), and long values.
    """
    if raw.tag >> 16 & 1 or raw.value is None or len(raw.value) > CACHED_VALUE_BYTES:
        return None
    vr = raw.VR
    if vr is None:
        try:
            vr = dictionary_VR(raw.tag)
        except KeyError:
            return None
    if vr not in CACHEABLE_VRS:
        return None
    # A plain int: pydicom's tag type compares in Python, and the key is compared on every hit.
    return (int(raw.tag), raw.VR, raw.value, raw.is_implicit_VR, raw.is_little_endian, charset)


def _element_json(dataset: Dataset, tag: BaseTag) -> dict[str, Any] | None:
    """DICOM JSON of one element; None for bulk data (kept in the file only)."""
    element = dataset[tag]
    if _is_bulk(element):
        return None
    return element.to_json_dict(bulk_data_element_handler=_drop, bulk_data_threshold=BULK_THRESHOLD)


# Each tag's JSON key and level (None: every level), by tag: a few hundred tags recur in
# every header, and looking their keywords up again is a good part of splitting one.
_placements: dict[int, tuple[str, QueryLevel | None]] = {}
PLACEMENT_ENTRIES = 4096


def placement(tag: int) -> tuple[str, QueryLevel | None]:
    found = _placements.get(tag)
    if found is None:
        keyword = keyword_for_tag(tag)
        found = (f"{tag:08X}", None if keyword in EVERY_LEVEL else level_of(keyword))
        if len(_placements) < PLACEMENT_ENTRIES:  # private tags vary without bound
            _placements[tag] = found
    return found


def element_value(
    dataset: Dataset, raw: DataElement | RawDataElement, charset: str
) -> dict[str, Any] | None:
    """DICOM JSON of one of the data set's elements, None for bulk data; `charset` is
    str() of its Specific Character Set. Raises what pydicom raises on a bad value."""
    key = _cache_key(raw, charset) if isinstance(raw, RawDataElement) else None
    value = _converted.get(key) if key is not None else None
    if value is None:
        value = _element_json(dataset, raw.tag)
        if value is not None and key is not None:
            if len(_converted) >= CACHE_ENTRIES:
                _converted.clear()
            _converted[key] = value
    return value


def split_by_level(dataset: Dataset) -> dict[QueryLevel, dict[str, Any]]:
    """DICOM JSON (PS3.18 F.2) of each level's attributes; bulk binary values are left out.

    Each element is converted once, straight into its level's JSON object, without
    building a Dataset per level first.
    """
    parts: dict[QueryLevel, dict[str, Any]] = {level: {} for level in QueryLevel}
    charset = str(dataset.get("SpecificCharacterSet", ""))
    try:
        for raw in dataset.elements():
            value = element_value(dataset, raw, charset)
            if value is None:
                continue
            json_key, level = placement(int(raw.tag))
            if level is None:
                for part in parts.values():
                    part[json_key] = value
            else:
                parts[level][json_key] = value
    except Exception as exc:
        raise InvalidInstance(f"attribute values cannot be decoded: {exc}") from exc
    return parts


def check_identity(dataset: Dataset, sop_class_uid: str, sop_instance_uid: str) -> None:
    """Raise DataSetMismatch unless the data set is the SOP Instance the request announced."""
    check_uids(dataset.SOPClassUID, dataset.SOPInstanceUID, sop_class_uid, sop_instance_uid)


def check_uids(
    found_class: Any, found_instance: Any, sop_class_uid: str, sop_instance_uid: str
) -> None:
    """Raise DataSetMismatch unless the UIDs found in a data set are the announced ones."""
    if found_class != sop_class_uid:
        raise DataSetMismatch(
            f"SOP Class UID {found_class} in the data set is not the {sop_class_uid} of the request"
        )
    if found_instance != sop_instance_uid:
        raise DataSetMismatch(
            f"SOP Instance UID {found_instance} in the data set is not the "
            f"{sop_instance_uid} of the request"
        )


def _drop(_element: Any) -> str:
    return ""
