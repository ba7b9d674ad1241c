"""C-FIND identifiers encoded from DICOM JSON are the bytes pydicom writes."""

from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

from pacs.dicom.header import split_by_level
from pacs.dicom.json_encoding import encode_json
from pacs.dicom.part10 import file_meta_bytes

FILES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "reportsi.dcm", "chrH31.dcm", "chrRuss.dcm"]
SIMPLE_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN", "SH", "SL"}
SIMPLE_VRS |= {"SS", "ST", "TM", "UC", "UI", "UL", "UR", "US", "UT"}


def _json_of(name: str) -> dict[str, Any]:
    found = get_testdata_file(name) if name[:3] != "chr" else get_charset_files(name)[0]
    dataset = dcmread(Path(str(found)), stop_before_pixels=True)
    merged: dict[str, Any] = {}
    for part in split_by_level(dataset).values():
        merged |= part
    return merged


def _pydicom(data_set: dict[str, Any], implicit: bool) -> bytes:
    encoded = encode(Dataset.from_json(data_set), implicit, True)
    assert encoded is not None
    return bytes(encoded)


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("name", FILES)
def test_strings_names_and_numbers_encode_as_pydicom_does(name: str, implicit: bool) -> None:
    whole = _json_of(name)
    simple = {key: element for key, element in whole.items() if element["vr"] in SIMPLE_VRS}
    if not all(str(v).isascii() for v in simple.values()):
        simple["00080005"] = {"vr": "CS", "Value": ["ISO_IR 192"]}  # as responses declare it

    assert encode_json(simple, implicit) == _pydicom(simple, implicit)
    assert encode_json(whole, implicit) in (None, _pydicom(whole, implicit))


def test_empty_and_multi_valued_elements_encode_as_pydicom_does() -> None:
    response = {
        "00080020": {"vr": "DA"},
        "00080052": {"vr": "CS", "Value": ["STUDY"]},
        "00080061": {"vr": "CS", "Value": ["CT", "MR", "PT"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}, {"Alphabetic": "Roe"}]},
        "00201206": {"vr": "IS", "Value": [3]},
        "00280030": {"vr": "DS", "Value": [0.703125, 0.5]},
        "00280010": {"vr": "US", "Value": [512]},
    }
    for implicit in (True, False):
        assert encode_json(response, implicit) == _pydicom(response, implicit)


@pytest.mark.parametrize(
    "element",
    [
        {"vr": "SQ", "Value": [{}]},
        {"vr": "OB", "InlineBinary": "AAAA"},
        {"vr": "AT", "Value": ["00100010"]},
        {"vr": "LO", "Value": ["one", None]},
        {"vr": "LO", "Value": ["Gr\u00fc\u00dfe"]},  # not ASCII, and no UTF-8 declared
    ],
)
def test_what_it_does_not_encode_is_left_to_pydicom(element: dict[str, Any]) -> None:
    assert (
        encode_json({"00100020": {"vr": "LO", "Value": ["P1"]}, "00400275": element}, True) is None
    )


def test_utf8_text_is_encoded_when_the_character_set_says_so() -> None:
    response = {
        "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "M\u00fcller^J\u00fcrgen"}]},
    }
    encoded = encode_json(response, False)

    assert encoded == _pydicom(response, False)
    assert dcmread(BytesIO(b"\0" * 128 + b"DICM" + _meta() + encoded)).PatientName == (
        "M\u00fcller^J\u00fcrgen"
    )


def _meta() -> bytes:
    return file_meta_bytes("1.2.3", "1.2.3.4", "1.2.840.10008.1.2.1", "")[132:]
