"""Every one of pydicom's test files, de-identified and written as Part 10, keeps no value of an
attribute the profile removes or replaces, reads back in pydicom and (a sample) in DCMTK's
dcmdump. Files pydicom cannot read are skipped; burned-in refusals are counted apart."""

import subprocess
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread, dcmwrite
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from benchmarks.dcmtk import find as find_dcmtk
from pacs.dicom.deidentify import Dates, Deidentifier, Profile
from pacs.dicom.identity import IMPLEMENTATION_CLASS_UID
from pacs.errors import DeidentificationRefused
from tests.unit.deidentify_checks import expected_values, leaks

SECRET = b"test files secret"
PROFILES = {
    "basic": Profile(),
    "shift-dates": Profile(name="shifted", dates=Dates.SHIFT),
    "retain-all": Profile(
        name="retaining",
        dates=Dates.SHIFT,
        retain_patient_characteristics=True,
        retain_device_identity=True,
        retain_institution_identity=True,
        retain_uids=True,
        clean_descriptors=True,
    ),
    # The header of the files refused for their pixels, de-identified all the same.
    "burned-in-accepted": Profile(accept_burned_in_annotation=True),
}
DCMDUMP_SAMPLE = 12  # every n-th written output goes through dcmdump


def _read(path: Path) -> Dataset | None:
    """The test file as pydicom reads it; None for what is no DICOM instance."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return dcmread(path)
        except InvalidDicomError:
            try:
                ds = dcmread(path, force=True)
            except Exception:
                return None
            return ds if "SOPClassUID" in ds else None
        except Exception:
            return None


def _part10(ds: Dataset) -> bytes:
    """`ds` as a Part 10 file, in its own encoding; a file read without meta gets one."""
    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = ds.original_encoding
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian
            if implicit
            else (ExplicitVRLittleEndian if little in (True, None) else ExplicitVRBigEndian)
        )
        meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID  # not pydicom's, as pacs writes
        ds.file_meta = meta
    meta = ds.file_meta
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _bare(ds: Dataset) -> bytes:
    """`ds` without File Meta Information, for a data set that names no SOP Instance."""
    implicit, little = ds.original_encoding
    buffer = BytesIO()
    dcmwrite(buffer, ds, implicit_vr=bool(implicit), little_endian=little is not False)
    return buffer.getvalue()


@dataclass
class Tally:
    written: list[bytes]
    refused: int = 0
    unreadable: int = 0
    no_instance: int = 0  # no SOP Class / Instance for File Meta Information: scanned bare


def _run(profile: Profile, tmp_path: Path) -> Tally:
    deidentifier = Deidentifier(profile, SECRET)
    tally = Tally(written=[])
    failures: dict[str, list[bytes]] = {}
    # Some test files hold invalid values on purpose; pydicom warns as it reads them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(Path(p) for p in get_testdata_files() if Path(p).is_file()):
            _one(deidentifier, profile, path, tally, failures)
    assert not failures, f"original values left in the output: {failures}"
    return tally


def _names_itself(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None) or Dataset()
    return bool(ds.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID")) and bool(
        ds.get("SOPInstanceUID") or meta.get("MediaStorageSOPInstanceUID")
    )


def _one(
    deidentifier: Deidentifier,
    profile: Profile,
    path: Path,
    tally: Tally,
    failures: dict[str, list[bytes]],
) -> None:
    source = _read(path)
    if source is None:
        tally.unreadable += 1
        return
    expectation = expected_values(source, profile)
    try:
        output = deidentifier(source)
    except DeidentificationRefused:
        tally.refused += 1
        return
    named = _names_itself(output)
    written = _part10(output) if named else _bare(output)
    subject = deidentifier.subject(source)
    fresh = [deidentifier.uid_map(uid) for uid in expectation.uids] + [subject.pseudonym]
    # What the de-identifier says it did: the method's code values and meanings.
    fresh += [text for code in profile.method_codes() for text in (code.value, code.meaning)]
    fresh += [output.LongitudinalTemporalInformationModified]
    if found := leaks(written, output, expectation, fresh):
        failures[path.name] = found
    if not named:
        tally.no_instance += 1
        return
    back = dcmread(BytesIO(written))
    assert back.PatientIdentityRemoved == "YES"
    if "SOPInstanceUID" in back:
        assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    tally.written.append(written)


@pytest.mark.parametrize("name", list(PROFILES))
def test_no_removed_value_is_left_in_any_test_file(name: str, tmp_path: Path) -> None:
    tally = _run(PROFILES[name], tmp_path)
    print(
        f"{name}: {len(tally.written)} written, {tally.refused} refused for burned-in "
        f"annotation, {tally.unreadable} unreadable, {tally.no_instance} without an instance"
    )
    assert len(tally.written) > 100  # the proof covers most of the files, not a handful
    # Ultrasound and screen captures without a statement are refused unless accepted.
    assert (tally.refused > 0) is not PROFILES[name].accept_burned_in_annotation


@pytest.mark.dcmtk
def test_dcmdump_reads_a_sample_of_the_outputs(tmp_path: Path) -> None:
    dcmdump = find_dcmtk("dcmdump")
    assert dcmdump is not None, "DCMTK's dcmdump is not installed"
    tally = _run(PROFILES["shift-dates"], tmp_path)
    sample = tally.written[::DCMDUMP_SAMPLE]
    for index, written in enumerate(sample):
        path = tmp_path / f"out{index}.dcm"
        path.write_bytes(written)
        result = subprocess.run([dcmdump, str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert "E: " not in result.stderr, result.stderr
        assert "(0012,0062) CS [YES]" in result.stdout
