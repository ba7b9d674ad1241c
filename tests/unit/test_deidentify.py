"""pacs.dicom.deidentify on hand-made data sets: the table, each option, sequences, private
blocks, UIDs, dates, the refusal of burned-in annotation and what the output says was done."""

from datetime import date, timedelta
from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ImplicitVRLittleEndian, UltrasoundImageStorage

from pacs.dicom.deidentify import (
    Dates,
    Deidentifier,
    Profile,
    SafePrivateTag,
    hashed_uid_map,
)
from pacs.errors import DeidentificationRefused

SECRET = b"unit secret"
CREATOR = "ACME 1.0"


def _instance() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.3.4.5.6.7"
    ds.StudyInstanceUID = "1.2.3.4.5"
    ds.SeriesInstanceUID = "1.2.3.4.5.6"
    ds.Modality = "CT"
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "MRN12345"
    ds.PatientSex = "F"
    ds.PatientAge = "042Y"
    ds.PatientWeight = "61"
    ds.InstitutionName = "GENERAL HOSPITAL"
    ds.DeviceSerialNumber = "SN-998877"
    ds.StudyDescription = "CHEST PAIN"
    ds.StudyDate = "20240229"
    ds.AcquisitionDateTime = "20240229235959.5+0100"
    ds.StudyTime = "235959"
    ds.OtherPatientIDsSequence = [Dataset()]
    ds.OtherPatientIDsSequence[0].PatientID = "OLDMRN"
    ds.add_new(0x00090010, "LO", CREATOR)  # the private creator of block 0x10
    ds.add_new(0x00091010, "LO", "SAFE VALUE")
    ds.add_new(0x00091011, "LO", "DOE JANE")
    ds.add_new(0x60003000, "OW", b"\x01\x00" * 8)  # overlay data
    ds.add_new(0x60000010, "US", 4)  # overlay rows
    return ds


def _meta(ds: Dataset) -> Dataset:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.file_meta.SourceApplicationEntityTitle = "CT_SCANNER_7"
    return ds


def test_basic_profile_removes_replaces_and_marks() -> None:
    source = _instance()
    out = Deidentifier(Profile(), SECRET)(source)
    subject = Deidentifier(Profile(), SECRET).subject(source)
    assert out.PatientName == out.PatientID == subject.pseudonym != "MRN12345"
    assert not out.PatientSex and "PatientAge" not in out and "PatientWeight" not in out
    assert out.InstitutionName == "ANONYMIZED"  # X/Z/D: a dummy conforms to every IOD
    assert out.DeviceSerialNumber == "ANONYMIZED"
    assert "StudyDescription" not in out and "OtherPatientIDsSequence" not in out
    assert not out.StudyDate and out.AcquisitionDateTime == "19000101000000"
    assert out.SOPInstanceUID == hashed_uid_map(SECRET)("1.2.3.4.5.6.7")
    assert not any(element.tag.group in (0x0009, 0x6000) for element in out)
    assert out.PatientIdentityRemoved == "YES"
    assert [item.CodeValue for item in out.DeidentificationMethodCodeSequence] == ["113100"]
    assert out.DeidentificationMethod == "Basic Application Confidentiality Profile"
    assert source.PatientName == "DOE^JANE"  # the original is left as it was


def test_each_option_keeps_what_it_names_and_is_coded() -> None:
    profile = Profile(
        dates=Dates.KEEP,
        retain_patient_characteristics=True,
        retain_device_identity=True,
        retain_institution_identity=True,
        retain_uids=True,
        clean_descriptors=True,
        safe_private=frozenset({SafePrivateTag(0x0009, CREATOR, 0x10)}),
    )
    out = Deidentifier(profile, SECRET)(_instance())
    assert (out.PatientSex, out.PatientAge, out.PatientWeight) == ("F", "042Y", 61)
    assert out.InstitutionName == "GENERAL HOSPITAL"
    assert out.DeviceSerialNumber == "SN-998877"
    assert out.StudyDescription == "CHEST PAIN"
    assert out.StudyDate == "20240229" and out.StudyInstanceUID == "1.2.3.4.5"
    assert out[0x00090010].value == CREATOR and out[0x00091010].value == "SAFE VALUE"
    assert 0x00091011 not in out  # a private element the list does not name
    assert "PatientName" in out and out.PatientName != "DOE^JANE"
    assert not any(element.tag.group == 0x6000 for element in out)
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113111", "113110", "113109", "113112", "113108", "113106", "113105"]
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_shifted_dates_move_whole_days_and_keep_times_and_offsets() -> None:
    source = _instance()
    source.add_new(0x00080021, "DA", ["20240101", "20240301"])  # Series Date, two values
    source.StartAcquisitionDateTime = "2024"  # too partial to shift
    deidentifier = Deidentifier(Profile(dates=Dates.SHIFT), SECRET)
    shift = deidentifier.subject(source).shift_days
    out = deidentifier(source)
    assert -3652 <= shift < 0
    assert out.StudyTime == "235959"
    assert out.AcquisitionDateTime.endswith("235959.5+0100")
    moved = date(2024, 2, 29) + timedelta(days=shift)
    assert out.StudyDate == moved.strftime("%Y%m%d")
    assert out.AcquisitionDateTime[:8] == moved.strftime("%Y%m%d")
    first, second = (date(2024, 1, 1), date(2024, 3, 1))
    assert list(out.SeriesDate) == [
        (day + timedelta(days=shift)).strftime("%Y%m%d") for day in (first, second)
    ]
    assert not out.StartAcquisitionDateTime
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"


def test_sequences_are_emptied_dummied_or_walked_by_their_action() -> None:
    source = _instance()
    source.ContentSequence = [Dataset()]  # D: one empty item
    source.ContentSequence[0].TextValue = "Jane Doe fell"
    source.AcquisitionContextSequence = [Dataset()]  # X/Z: no items
    source.ReferencedSeriesSequence = [Dataset()]  # not in the table: walked
    source.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3.4.5.6"
    source.ReferencedSeriesSequence[0].PatientName = "DOE^JANE"
    out = Deidentifier(Profile(), SECRET)(source)
    assert len(out.ContentSequence) == 1 and len(out.ContentSequence[0]) == 0
    assert len(out.AcquisitionContextSequence) == 0
    nested = out.ReferencedSeriesSequence[0]
    assert nested.SeriesInstanceUID == out.SeriesInstanceUID
    assert nested.PatientName == out.PatientName != "DOE^JANE"


def test_uids_map_the_same_way_every_time_through_the_given_mapping() -> None:
    recorded: dict[str, str] = {}

    def mapping(uid: str) -> str:
        return recorded.setdefault(uid, f"2.25.{len(recorded) + 1}")

    deidentifier = Deidentifier(Profile(), SECRET, uid_map=mapping)
    first, second = deidentifier(_meta(_instance())), deidentifier(_meta(_instance()))
    assert first.SOPInstanceUID == second.SOPInstanceUID == recorded["1.2.3.4.5.6.7"]
    assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in first.file_meta
    default, other = hashed_uid_map(SECRET), hashed_uid_map(b"another secret")
    uid = default("1.2.3")
    assert uid == default("1.2.3") != other("1.2.3")
    assert uid.startswith("2.25.") and len(uid) <= 64 and int(uid[5:]) < 2**128


def test_the_output_keeps_the_source_syntax_and_reads_back() -> None:
    source = dcmread(BytesIO(_part10(_meta(_instance()))))
    out = Deidentifier(Profile(), SECRET)(source)
    back = dcmread(BytesIO(_part10(out)))
    assert back.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert back.SOPInstanceUID == out.SOPInstanceUID
    assert back.PatientName == out.PatientName


def _part10(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("modality", "sop_class", "burned_in", "refused"),
    [
        ("CT", CTImageStorage, "YES", True),
        ("US", UltrasoundImageStorage, None, True),
        ("OT", "1.2.840.10008.5.1.4.1.1.7", None, True),  # Secondary Capture
        ("US", UltrasoundImageStorage, "NO", False),
        ("CT", CTImageStorage, None, False),
    ],
)
def test_burned_in_annotation_is_refused_unless_stated_absent(
    modality: str, sop_class: str, burned_in: str | None, refused: bool
) -> None:
    source = _instance()
    source.Modality, source.SOPClassUID = modality, sop_class
    if burned_in is not None:
        source.BurnedInAnnotation = burned_in
    if refused:
        with pytest.raises(DeidentificationRefused, match="Burned In Annotation"):
            Deidentifier(Profile(), SECRET)(source)
        accepting = Profile(accept_burned_in_annotation=True)
        assert Deidentifier(accepting, SECRET)(source).PatientIdentityRemoved == "YES"
    else:
        assert Deidentifier(Profile(), SECRET)(source).PatientIdentityRemoved == "YES"
