"""The archive's de-identified Part 10 files: the same bytes as pydicom's own writer, in the
stored transfer syntax, with the replacements recorded for the index."""

from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from pacs.archive.deidentification import Deidentification, KeyedProfile
from pacs.dicom.deidentify import Profile
from pacs.errors import DeidentificationRefused

KEYED = KeyedProfile(Profile(accept_burned_in_annotation=True), b"unit test secret")


def _testdata(name: str) -> bytes:
    path = get_testdata_file(name)
    assert isinstance(path, str)
    return Path(path).read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "JPEG2000.dcm",
        "image_dfl.dcm",
    ],
)
def test_rewritten_files_are_what_pydicom_writes_in_the_stored_syntax(name: str) -> None:
    data = _testdata(name)
    source = dcmread(BytesIO(data))
    transfer = Deidentification("basic", KEYED)

    part10, new_uid = transfer.rewrite(BytesIO(data))

    expected = BytesIO()
    Deidentification("basic", KEYED).apply(source).save_as(expected, enforce_file_format=True)
    written = part10.read()
    assert written == expected.getvalue()
    back = dcmread(BytesIO(written))
    assert back.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    assert back.SOPInstanceUID == new_uid == transfer.uids[str(source.SOPInstanceUID)]
    assert str(source.PatientName) not in str(back.get("PatientName", ""))


def test_the_patient_key_records_pseudonym_and_shift() -> None:
    data = _testdata("CT_small.dcm")
    transfer = Deidentification("basic", KEYED)

    _, uid = transfer.rewrite(BytesIO(data))

    source = dcmread(BytesIO(data))
    ((key, subject),) = transfer.patients.items()
    assert key == ("", str(source.PatientID))
    assert subject.pseudonym.startswith("ANON") and subject.shift_days < 0
    assert uid in transfer.uids.values()


def test_a_burned_in_instance_is_refused_and_records_nothing() -> None:
    ds = dcmread(BytesIO(_testdata("CT_small.dcm")))
    ds.BurnedInAnnotation = "YES"
    buffer = BytesIO()
    ds.save_as(buffer)
    transfer = Deidentification("basic", KeyedProfile(Profile(), b"s"))

    with pytest.raises(DeidentificationRefused):
        transfer.rewrite(BytesIO(buffer.getvalue()))
    assert (transfer.uids, transfer.patients) == ({}, {})
