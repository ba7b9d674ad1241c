"""The benchmark's generated studies, de-identified: no removed value is left in the bytes,
references between instances resolve to the replaced UIDs, studies and series stay whole,
each patient keeps one pseudonym, and shifted dates keep their intervals across studies."""

import subprocess
from datetime import date
from io import BytesIO
from itertools import pairwise
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from benchmarks.dataset import Kind, generate
from benchmarks.dcmtk import find as find_dcmtk
from pacs.dicom.deidentify import Dates, Deidentifier, Profile
from tests.unit.deidentify_checks import expected_values, leaks

SECRET = b"studies secret"
SHIFTED = Profile(name="shifted", dates=Dates.SHIFT)


def _with_references(sources: list[Dataset]) -> None:
    """Each instance after the first of its series refers to the one before it, as a
    reconstruction refers to its source images."""
    for before, ds in pairwise(sources):
        if before.SeriesInstanceUID != ds.SeriesInstanceUID:
            continue
        reference = Dataset()
        reference.ReferencedSOPClassUID = before.SOPClassUID
        reference.ReferencedSOPInstanceUID = before.SOPInstanceUID
        ds.ReferencedImageSequence = [reference]
        ds.SourceImageSequence = [reference]
        ds.AcquisitionDateTime = f"{ds.StudyDate}{ds.ContentTime}.250000"


def _studies(tmp_path: Path, kind: Kind, count: int, seed: int) -> list[Dataset]:
    paths = generate(tmp_path / kind.value, kind, count, studies=4, patients=2, seed=seed)
    sources: list[Dataset] = [dcmread(path) for path in paths]
    for ds in sources:
        if kind is Kind.SMALL:
            ds.BurnedInAnnotation = "NO"  # a generated gradient: no text in the pixels
    _with_references(sources)
    return sources


def _write(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Dataset]:
    tmp_path = tmp_path_factory.mktemp("studies")
    # Seeds apart: the generator's UIDs derive from the seed and the position alone.
    return _studies(tmp_path, Kind.CT, 12, seed=1) + _studies(tmp_path, Kind.SMALL, 16, seed=2)


@pytest.mark.parametrize("profile", [Profile(), SHIFTED], ids=["basic", "shift-dates"])
def test_no_removed_value_is_left_in_a_generated_study(
    sources: list[Dataset], profile: Profile
) -> None:
    deidentifier = Deidentifier(profile, SECRET)
    for source in sources:
        expectation = expected_values(source, profile)
        output = deidentifier(source)
        written = _write(output)
        fresh = [deidentifier.uid_map(uid) for uid in expectation.uids]
        fresh += [deidentifier.subject(source).pseudonym, output.DeidentificationMethod[-1]]
        assert leaks(written, output, expectation, fresh) == []
        assert expectation.removed  # names, IDs, UIDs, dates: there was something to remove
        back = dcmread(BytesIO(written))
        assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
        assert back.PixelData == source.PixelData


def test_references_resolve_to_the_replaced_uids(sources: list[Dataset]) -> None:
    deidentifier = Deidentifier(Profile(), SECRET)
    outputs = {source.SOPInstanceUID: deidentifier(source) for source in sources}
    referring = [ds for ds in outputs.values() if "ReferencedImageSequence" in ds]
    assert len(referring) > 10
    new_uids = {ds.SOPInstanceUID for ds in outputs.values()}
    assert not new_uids & set(outputs)  # every SOP Instance UID was replaced
    for source in sources:
        if "ReferencedImageSequence" not in source:
            continue
        output = outputs[source.SOPInstanceUID]
        target = outputs[source.ReferencedImageSequence[0].ReferencedSOPInstanceUID]
        for keyword in ("ReferencedImageSequence", "SourceImageSequence"):
            reference = output[keyword].value[0]
            assert reference.ReferencedSOPInstanceUID == target.SOPInstanceUID
            assert reference.ReferencedSOPClassUID == target.SOPClassUID
        assert output.SeriesInstanceUID == target.SeriesInstanceUID != source.SeriesInstanceUID
        assert output.StudyInstanceUID == target.StudyInstanceUID != source.StudyInstanceUID


def test_studies_series_and_patients_stay_whole(sources: list[Dataset]) -> None:
    deidentifier = Deidentifier(Profile(), SECRET)
    again = Deidentifier(Profile(), SECRET)  # another run, e.g. tomorrow's export
    pairs = [(source, deidentifier(source)) for source in sources]

    def partition(keyword: str, side: int) -> set[frozenset[int]]:
        groups: dict[str, set[int]] = {}
        for index, pair in enumerate(pairs):
            groups.setdefault(str(pair[side][keyword].value), set()).add(index)
        return {frozenset(group) for group in groups.values()}

    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        if all(keyword in source for source, _ in pairs):
            assert partition(keyword, 1) == partition(keyword, 0)
    assert partition("PatientID", 1) == partition("PatientID", 0)
    assert {output.PatientID for _, output in pairs}.isdisjoint(s.PatientID for s in sources)
    assert [again(source).SOPInstanceUID for source in sources] == [
        output.SOPInstanceUID for _, output in pairs
    ]


def _day(value: str) -> date:
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


def test_shifted_dates_keep_their_intervals_across_studies(sources: list[Dataset]) -> None:
    deidentifier = Deidentifier(SHIFTED, SECRET)
    shifts: dict[str, set[int]] = {}
    for source in sources:
        output = deidentifier(source)
        shift = (_day(output.StudyDate) - _day(source.StudyDate)).days
        shifts.setdefault(source.PatientID, set()).add(shift)
        assert (_day(output.ContentDate) - _day(source.ContentDate)).days == shift
        assert output.StudyTime == source.StudyTime  # whole days: times of day unchanged
        if "AcquisitionDateTime" in source:
            moved = _day(output.AcquisitionDateTime) - _day(source.AcquisitionDateTime)
            assert moved.days == shift
            assert output.AcquisitionDateTime[8:] == source.AcquisitionDateTime[8:]
        assert output.LongitudinalTemporalInformationModified == "MODIFIED"
        assert not output.get("PatientBirthDate")  # Z in the table, whatever the option
    assert all(len(per_patient) == 1 for per_patient in shifts.values())  # one per patient
    assert all(shift < 0 for per_patient in shifts.values() for shift in per_patient)
    studies = {source.StudyDate for source in sources}
    assert len(studies) > 1  # intervals between studies were there to keep


def test_basic_profile_removes_dates(sources: list[Dataset]) -> None:
    output = Deidentifier(Profile(), SECRET)(sources[1])
    assert not output.get("StudyDate")
    assert output.get("ContentDate") == "19000101"  # Z/D: a dummy conforms to every IOD
    assert output.LongitudinalTemporalInformationModified == "REMOVED"


@pytest.mark.dcmtk
def test_dcmdump_reads_de_identified_studies(sources: list[Dataset], tmp_path: Path) -> None:
    dcmdump = find_dcmtk("dcmdump")
    assert dcmdump is not None, "DCMTK's dcmdump is not installed"
    deidentifier = Deidentifier(SHIFTED, SECRET)
    for index, source in enumerate(sources[::5]):
        path = tmp_path / f"{index}.dcm"
        path.write_bytes(_write(deidentifier(source)))
        result = subprocess.run([dcmdump, str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert "E: " not in result.stderr, result.stderr


def test_the_byte_scan_finds_what_was_left_behind(sources: list[Dataset]) -> None:
    """The proof can fail: the original written as it is shows its name, ID and UIDs."""
    source = sources[1]
    expectation = expected_values(source, Profile())
    found = leaks(_write(source), source, expectation, fresh=[])
    for value in (source.PatientName, source.PatientID, source.SOPInstanceUID):
        assert str(value).encode() in found
    assert str(source.SOPClassUID).encode() not in expectation.removed  # kept by the table
