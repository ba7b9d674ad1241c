"""C-FIND identifiers as the SCP decodes and parses them: empty return keys are keys, and a
value that cannot be decoded is refused before any matching starts."""

import struct

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.dsutils import encode

from pacs.dicom.matching import InformationModel, SingleValue, parse_identifier
from pacs.errors import InvalidIdentifier
from pacs.net.identifier import decode_identifier

STUDY_LEVEL = struct.pack("<HH2sH", 0x0008, 0x0052, b"CS", 6) + b"STUDY "


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_empty_keys_are_return_keys_and_valued_ones_constraints(syntax: str) -> None:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = ""
    ds.StudyDate = ""
    ds.AccessionNumber = "ACC-1"
    ds.NumberOfStudyRelatedInstances = ""
    ds.add_new(0x00091001, "LO", "")  # private: neither a key nor a constraint
    data = encode(ds, syntax == ImplicitVRLittleEndian, True)
    assert data is not None

    query = parse_identifier(decode_identifier(bytes(data), syntax), InformationModel.STUDY_ROOT)

    assert query.return_keys == (
        "StudyDate",
        "AccessionNumber",
        "PatientName",
        "NumberOfStudyRelatedInstances",
    )
    assert query.constraints == (SingleValue("AccessionNumber", "ACC-1"),)
    assert query.character_set == ("ISO_IR 192",)


def test_a_value_that_cannot_be_decoded_is_an_invalid_identifier() -> None:
    odd_us = struct.pack("<HH2sH", 0x0020, 0x1206, b"US", 3) + b"abc"

    with pytest.raises(InvalidIdentifier, match="cannot be decoded"):
        decode_identifier(STUDY_LEVEL + odd_us, ExplicitVRLittleEndian)
