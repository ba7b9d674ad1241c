"""Read what the index needs from a received Part 10 file: the attributes before pixel data."""

from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from pacs.dicom.levels import EVERY_LEVEL, QueryLevel, level_of
from pacs.dicom.structure import check_complete
from pacs.errors import InvalidInstance

# Binary values larger than this stay in the file only (they are bulk data, not index material).
BULK_THRESHOLD = 1024
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


def read_header(path: Path, data_set_offset: int, transfer_syntax: str) -> Dataset:
    """Parse the header and check the whole data set is there; raise InvalidInstance if not.

    Blocking: runs in a worker thread. Pixel data is never read into memory.
    """
    syntax = UID(transfer_syntax)
    if syntax != DeflatedExplicitVRLittleEndian:
        with path.open("rb") as fp:
            check_complete(fp, data_set_offset, syntax.is_implicit_VR, syntax.is_little_endian)
    try:
        dataset = dcmread(path, stop_before_pixels=True)
    except Exception as exc:
        raise InvalidInstance(f"the data set cannot be parsed: {exc}") from exc
    missing = [keyword for keyword in REQUIRED if not str(dataset.get(keyword, "") or "").strip()]
    if missing:
        raise InvalidInstance(f"the data set has no {', '.join(missing)}")
    return dataset


def _is_bulk(element: Any) -> bool:
    return element.VR in BINARY_VRS and element.length > BULK_THRESHOLD


def split_by_level(dataset: Dataset) -> dict[QueryLevel, dict[str, Any]]:
    """DICOM JSON (PS3.18 F.2) of each level's attributes; bulk binary values are left out.

    Each element is converted once, straight into its level's JSON object: building
    a Dataset per level first cost more than the conversion itself.
    """
    parts: dict[QueryLevel, dict[str, Any]] = {level: {} for level in QueryLevel}
    try:
        for element in dataset:
            if _is_bulk(element):
                continue
            value = element.to_json_dict(
                bulk_data_element_handler=_drop, bulk_data_threshold=BULK_THRESHOLD
            )
            key = f"{element.tag:08X}"
            keyword = element.keyword
            if keyword in EVERY_LEVEL:
                for part in parts.values():
                    part[key] = value
            else:
                parts[level_of(keyword)][key] = value
    except Exception as exc:
        raise InvalidInstance(f"attribute values cannot be decoded: {exc}") from exc
    return parts


def _drop(_element: Any) -> str:
    return ""
