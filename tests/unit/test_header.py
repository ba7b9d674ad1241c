"""The index's DICOM JSON of a header is pydicom's, however often an element repeats."""

from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset

from pacs.dicom.header import BINARY_VRS, BULK_THRESHOLD, read_header, split_by_level
from pacs.dicom.levels import EVERY_LEVEL, QueryLevel, level_of
from pacs.dicom.part10 import seek_data_set
from pacs.errors import InvalidInstance
from tests.conftest import make_instance

# Explicit and implicit VR, little and big endian, sequences, private tags, character sets.
TESTDATA = [
    "CT_small.dcm",  # private OB elements before the pixels
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "rtplan.dcm",
    "reportsi.dcm",
    "priv_SQ.dcm",
    "nested_priv_SQ.dcm",
    "UN_sequence.dcm",
    "examples_overlay.dcm",  # OW overlay data before the pixels
    "empty_charset_LEI.dcm",
    "chrH31.dcm",
    "chrRuss.dcm",
    "chrArab.dcm",
    "chrSQEncoding.dcm",
]


def _encoded(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _reference(data: bytes) -> dict[QueryLevel, dict[str, Any]]:
    """Each non-bulk element converted by pydicom on a fresh parse, placed by its level."""
    dataset = dcmread(BytesIO(data), stop_before_pixels=True)
    parts: dict[QueryLevel, dict[str, Any]] = {level: {} for level in QueryLevel}
    for element in dataset:
        if element.VR in BINARY_VRS and len(element.value or b"") > BULK_THRESHOLD:
            continue
        value = element.to_json_dict(lambda _: "", BULK_THRESHOLD)
        levels = list(QueryLevel) if element.keyword in EVERY_LEVEL else [level_of(element.keyword)]
        for level in levels:
            parts[level][f"{element.tag:08X}"] = value
    return parts


def _split(data: bytes) -> dict[QueryLevel, dict[str, Any]]:
    dataset = dcmread(BytesIO(data), stop_before_pixels=True)
    dataset.get("SOPInstanceUID")  # some elements are already converted, as in ingest
    return split_by_level(dataset)


@pytest.mark.parametrize("name", TESTDATA)
def test_levels_are_pydicoms_json_on_first_and_repeated_sight(name: str) -> None:
    found = get_testdata_file(name) if name[:3] != "chr" else get_charset_files(name)[0]
    data = Path(str(found)).read_bytes()

    assert _split(data) == _reference(data)
    assert _split(data) == _reference(data)  # the second time from the converted values


def test_the_same_bytes_under_another_character_set_are_decoded_anew() -> None:
    ds = make_instance(SpecificCharacterSet="ISO_IR 192")
    ds.PatientName = "M\xfcller^J\xfcrgen"
    ds.StudyDescription = "Sch\xe4del"
    utf8_data = _encoded(ds)
    # The same value bytes, declared Latin-1: "M\xfcller" in UTF-8 reads as "M\xc3\xbcller".
    latin1_data = utf8_data.replace(b"ISO_IR 192", b"ISO_IR 100")

    first = _split(utf8_data)
    second = _split(latin1_data)

    assert first == _reference(utf8_data)
    assert second == _reference(latin1_data)
    assert second[QueryLevel.PATIENT]["00100010"]["Value"][0]["Alphabetic"] == (
        "M\xc3\xbcller^J\xc3\xbcrgen"
    )


def _data_set_bytes(ds: Dataset) -> tuple[BytesIO, str]:
    """The data set of `ds` encoded alone, and its transfer syntax, as ingest reads it."""
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    start = seek_data_set(buffer)
    return buffer, start.transfer_syntax_uid


@pytest.mark.parametrize("filler", [b"\x00", b" "])
def test_a_required_uid_of_padding_only_is_missing(filler: bytes) -> None:
    ds = make_instance()
    ds.SeriesInstanceUID = "9.9.9.9.9.9"  # 12 bytes with its pad, replaced below
    fp, syntax = _data_set_bytes(ds)
    encoded = fp.getvalue()
    assert encoded.count(b"9.9.9.9.9.9\x00") == 1
    fp = BytesIO(encoded.replace(b"9.9.9.9.9.9\x00", filler * 12))
    fp.seek(seek_data_set(fp).offset)

    with pytest.raises(InvalidInstance, match="the data set has no SeriesInstanceUID"):
        read_header(fp, syntax)


def test_an_empty_required_uid_is_missing() -> None:
    ds = make_instance()
    ds.SeriesInstanceUID = ""
    fp, syntax = _data_set_bytes(ds)

    with pytest.raises(InvalidInstance, match="the data set has no SeriesInstanceUID"):
        read_header(fp, syntax)


def test_every_missing_required_uid_is_named() -> None:
    ds = make_instance()
    del ds.StudyInstanceUID
    del ds.SOPClassUID
    fp, syntax = _data_set_bytes(ds)

    with pytest.raises(InvalidInstance, match=r"has no SOPClassUID, StudyInstanceUID$"):
        read_header(fp, syntax)


def test_a_header_with_its_required_uids_reads_them() -> None:
    ds = make_instance()
    fp, syntax = _data_set_bytes(ds)

    header = read_header(fp, syntax)

    assert header.SOPInstanceUID == ds.SOPInstanceUID
    assert header.SeriesInstanceUID == ds.SeriesInstanceUID
