"""`pacs reindex`: an index rebuilt from a real server's store answers C-FIND as the live one."""

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import POSTGRES_URL, _admin, _with_database, make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs
from tests.integration.serve_process import run_pacs_apart
from tests.integration.terminal import run_on_terminal

PATIENT_ROOT = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"
MR = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

PATIENT_KEYS = [
    "PatientID",
    "PatientName",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "NumberOfPatientRelatedStudies",
    "NumberOfPatientRelatedSeries",
    "NumberOfPatientRelatedInstances",
]
STUDY_KEYS = [
    "StudyInstanceUID",
    "PatientID",
    "PatientName",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "StudyDescription",
    "ReferringPhysicianName",
    "ModalitiesInStudy",
    "SOPClassesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
]
SERIES_KEYS = [
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "BodyPartExamined",
    "NumberOfSeriesRelatedInstances",
]
IMAGE_KEYS = ["SOPInstanceUID", "SOPClassUID", "InstanceNumber", "ImageType", "Rows"]


@pytest.fixture
async def second_database(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database beside `database_url`'s, on the same engine."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'rebuilt' / 'index.sqlite'}"
        return
    name = f"pacs_test_{uuid.uuid4().hex[:16]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run_pacs(*args: str) -> tuple[int, str, str]:
    """Run `python -m pacs ARGS`; return its exit code, stdout and stderr."""
    return await run_pacs_apart(*args)


def _series(count: int, **header: object) -> list[Dataset]:
    series = generate_uid()
    return [
        make_instance(SeriesInstanceUID=series, InstanceNumber=n + 1, **header)
        for n in range(count)
    ]


def varied_archive() -> list[Dataset]:
    """Patients with and without IDs and issuers, three character sets, three modalities."""
    study_a, study_b = generate_uid(), generate_uid()
    latin = {"PatientID": "R-1", "PatientName": "Müller^Hans", "PatientSex": "M"}
    return [
        *_series(3, StudyInstanceUID=study_a, **latin),
        *_series(
            2,
            StudyInstanceUID=study_a,
            SOPClassUID=MR,
            Modality="MR",
            SeriesNumber=3,
            BodyPartExamined="HEAD",
            **latin,
        ),
        *_series(2, StudyInstanceUID=study_b, StudyDate="20250101", **latin),
        *_series(
            1,
            PatientID="R-1",
            IssuerOfPatientID="OTHER-HOSPITAL",
            PatientName="Other^Person",
            StudyInstanceUID=generate_uid(),
        ),
        *_series(
            2,
            SpecificCharacterSet="ISO_IR 192",
            PatientID="R-2",
            PatientName="王^小明",
            StudyDescription="頭部 CT",
            StudyInstanceUID=generate_uid(),
        ),
        *_series(
            1,
            SOPClassUID=SECONDARY_CAPTURE,
            Modality="OT",
            PatientID=None,
            PatientName="Nobody^Absent",
            StudyInstanceUID=generate_uid(),
        ),
        *_series(1, PatientID="", PatientName="Nobody^Empty", StudyInstanceUID=generate_uid()),
        *_series(1, PatientID="", PatientName="Nobody^Empty", StudyInstanceUID=generate_uid()),
    ]


def _identifier(level: str, keys: list[str], **matching: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword in keys:
        setattr(ds, keyword, "")
    for keyword, value in matching.items():
        setattr(ds, keyword, value)
    return ds


async def _find(address: PacsAddress, model: str, identifier: Dataset) -> list[str]:
    """The matches as sorted DICOM JSON: equal lists mean equal answers."""
    status, matches = await asyncio.to_thread(scu.find, address, model, identifier)
    assert status == 0
    return sorted(json.dumps(match.to_json_dict(), sort_keys=True) for match in matches)


async def answers(address: PacsAddress) -> dict[str, list[str]]:
    """C-FIND at every level with many return keys and several matching keys."""
    found = {
        "patients": await _find(address, PATIENT_ROOT, _identifier("PATIENT", PATIENT_KEYS)),
        "studies": await _find(address, STUDY_ROOT, _identifier("STUDY", STUDY_KEYS)),
        "MR studies": await _find(
            address, STUDY_ROOT, _identifier("STUDY", STUDY_KEYS, ModalitiesInStudy="MR")
        ),
        "M* studies": await _find(
            address, STUDY_ROOT, _identifier("STUDY", STUDY_KEYS, PatientName="M*")
        ),
        "R-1 patients": await _find(
            address,
            PATIENT_ROOT,
            _identifier("PATIENT", PATIENT_KEYS, PatientID="R-1", IssuerOfPatientID="OTHER*"),
        ),
        "R-1 studies": await _find(
            address, PATIENT_ROOT, _identifier("STUDY", STUDY_KEYS, PatientID="R-1")
        ),
    }
    for study in found["studies"]:
        study_uid = json.loads(study)["0020000D"]["Value"][0]
        series = await _find(
            address, STUDY_ROOT, _identifier("SERIES", SERIES_KEYS, StudyInstanceUID=study_uid)
        )
        found[f"series of {study_uid}"] = series
        for one in series:
            series_uid = json.loads(one)["0020000E"]["Value"][0]
            found[f"images of {series_uid}"] = await _find(
                address,
                STUDY_ROOT,
                _identifier(
                    "IMAGE", IMAGE_KEYS, StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid
                ),
            )
    return found


def _address(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256


async def test_a_rebuilt_index_answers_c_find_as_the_live_one(
    start_pacs: StartPacs, second_database: str
) -> None:
    live = await start_pacs(storage={"duplicate_policy": "replace"})
    assert live.directory is not None and live.app is not None
    replaced = make_instance(PatientID="R-3", SeriesDescription="FIRST")
    assert await asyncio.to_thread(scu.store, live, [replaced]) == [0]
    first = await live.app.index.get_instance(replaced.SOPInstanceUID)
    datasets = varied_archive()
    assert await asyncio.to_thread(scu.store, live, datasets) == [0] * len(datasets)
    replaced.SeriesDescription = "SECOND"  # stored last: the newest file of its UID
    assert await asyncio.to_thread(scu.store, live, [replaced]) == [0]
    second = await live.app.index.get_instance(replaced.SOPInstanceUID)
    assert first is not None and second is not None
    root = live.directory / "store"
    junk = b"not a DICOM file"
    _address(root, hashlib.sha256(junk).hexdigest()).parent.mkdir(parents=True, exist_ok=True)
    _address(root, hashlib.sha256(junk).hexdigest()).write_bytes(junk)
    config = str(live.directory / "pacs.toml")

    code, out, err = await run_pacs("reindex", "--config", config, "--into", second_database)

    assert code == 1, err  # the junk blob could not be read
    lines = out.splitlines()
    stored = len(datasets) + 1
    assert f"{stored + 2} blobs read, {stored} instances indexed in" in lines[1]
    assert (
        f"duplicate {replaced.SOPInstanceUID}: indexed {second.blob_sha256}, "
        f"not {first.blob_sha256}" in lines
    )
    assert any(
        line.startswith(f"unreadable {hashlib.sha256(junk).hexdigest()}: not a Part 10 file")
        for line in lines
    )
    assert "Müller" not in out + err and "Nobody" not in out + err
    rebuilt = await start_pacs(
        database={"url": second_database}, storage={"root": root, "duplicate_policy": "replace"}
    )
    expected = await answers(live)
    # R-1 twice (two issuers), R-2, R-3, and one per study of the three without a Patient ID
    assert len(expected["patients"]) == 7
    assert len(expected["studies"]) == 8
    assert await answers(rebuilt) == expected


async def test_reindex_refuses_a_database_that_already_indexes_instances(
    start_pacs: StartPacs,
) -> None:
    live = await start_pacs()
    assert live.directory is not None
    assert await asyncio.to_thread(scu.store, live, [make_instance()]) == [0]

    code, out, err = await run_pacs("reindex", "--config", str(live.directory / "pacs.toml"))

    assert code == 3, out + err
    assert "already indexes 1 instances" in err
    assert "--into" in err


async def test_under_keep_the_rebuilt_index_keeps_the_first_file_of_a_duplicate(
    start_pacs: StartPacs, second_database: str
) -> None:
    live = await start_pacs()  # duplicate_policy = "keep"
    assert live.directory is not None and live.app is not None
    duplicate = make_instance(SeriesDescription="FIRST")
    assert await asyncio.to_thread(scu.store, live, [duplicate, make_instance()]) == [0, 0]
    kept = await live.app.index.get_instance(duplicate.SOPInstanceUID)
    duplicate.SeriesDescription = "SECOND"
    assert await asyncio.to_thread(scu.store, live, [duplicate]) == [0]
    root = live.directory / "store"
    blobs = {path.name for path in root.glob("??/*") if path.is_file()}
    assert kept is not None and len(blobs) == 3  # the second file is stored, not indexed
    (dropped,) = blobs - await live.app.index.referenced_blobs()
    config = str(live.directory / "pacs.toml")

    code, out, err = await run_pacs("reindex", "--config", config, "--into", second_database)

    assert code == 0, err
    assert "3 blobs read, 2 instances indexed in" in out
    assert f"duplicate {duplicate.SOPInstanceUID}: indexed {kept.blob_sha256}, not {dropped}" in out
    rebuilt = await start_pacs(database={"url": second_database}, storage={"root": root})
    assert await answers(rebuilt) == await answers(live)


async def test_reindex_draws_a_progress_bar_on_a_terminal(
    start_pacs: StartPacs, second_database: str
) -> None:
    live = await start_pacs()
    assert live.directory is not None
    assert await asyncio.to_thread(scu.store, live, [make_instance() for _ in range(3)]) == [0] * 3
    config = str(live.directory / "pacs.toml")
    args = ["reindex", "--config", config, "--into", second_database]

    code, out, drawn = await run_on_terminal(*args)

    assert code == 0, drawn
    assert "0/3 [" in drawn and " blobs/s]" in drawn  # total and unit; 3 go by too fast
    assert "blobs/s]" not in out
