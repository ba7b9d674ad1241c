"""`pacs delete` beside a real server, then `pacs gc`, on SQLite and PostgreSQL."""

import asyncio
import json
import os
import pty
import sys
import threading
from pathlib import Path
from typing import Any

from pydicom import Dataset
from pydicom.uid import generate_uid

from pacs.admin import delete_from_index
from pacs.config import load_settings
from pacs.index.deletion import DeletionPlan, Level, Selection
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs
from tests.integration.terminal import read_all
from tests.integration.test_gc import (
    TWO_HOURS_AGO,
    blob_path,
    indexed_blobs,
    rehashes,
    run_pacs,
)

STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"


async def _find(pacs: PacsAddress, level: str, **keys: object) -> list[Dataset]:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    status, matches = await asyncio.to_thread(scu.find, pacs, STUDY_ROOT, identifier)
    assert status == 0
    return matches


async def _studies(pacs: PacsAddress, patient_id: str) -> dict[str, tuple[int, int, str]]:
    """Study UID -> (series, instances, modalities) as C-FIND reports them."""
    matches = await _find(
        pacs,
        "STUDY",
        PatientID=patient_id,
        StudyInstanceUID="",
        NumberOfStudyRelatedSeries="",
        NumberOfStudyRelatedInstances="",
        ModalitiesInStudy="",
    )
    return {
        m.StudyInstanceUID: (
            int(m.NumberOfStudyRelatedSeries),
            int(m.NumberOfStudyRelatedInstances),
            _joined(m.ModalitiesInStudy),
        )
        for m in matches
    }


def _joined(value: object) -> str:
    return value if isinstance(value, str) else "\\".join(str(v) for v in value)  # type: ignore[attr-defined]


def _archive() -> tuple[dict[str, str], list[Dataset]]:
    """Jane (P-1): study A (CT series of 2, SR series of 1) and study B; John (P-2): study C."""
    uids = {name: str(generate_uid()) for name in ("A", "B", "C", "ct", "sr")}
    jane = {"PatientID": "P-1", "PatientName": "Doe^Jane"}
    datasets = [
        make_instance(**jane, StudyInstanceUID=uids["A"], SeriesInstanceUID=uids["ct"]),
        make_instance(
            **jane, StudyInstanceUID=uids["A"], SeriesInstanceUID=uids["ct"], InstanceNumber=2
        ),
        make_instance(
            **jane, StudyInstanceUID=uids["A"], SeriesInstanceUID=uids["sr"], Modality="SR"
        ),
        make_instance(**jane, StudyInstanceUID=uids["B"]),
        make_instance(PatientID="P-2", PatientName="Roe^John", StudyInstanceUID=uids["C"]),
    ]
    return uids, datasets


def _audit_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_delete_series_study_patient_then_gc_collects_their_blobs(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    audit_file = tmp_path / "audit.jsonl"
    pacs = await start_pacs(audit={"file": audit_file})
    assert pacs.directory is not None
    config, root = pacs.directory / "pacs.toml", pacs.directory / "store"
    uids, datasets = _archive()
    assert await asyncio.to_thread(scu.store, pacs, datasets) == [0] * 5
    blobs = await indexed_blobs(pacs, datasets)

    code, out, err = await run_pacs(config, "delete", "--series", uids["ct"], "--yes")

    assert code == 0, err
    assert out.strip() == (
        "deleted from the index: 0 patients, 0 studies, 1 series, 2 instances; "
        "their files go at the next pacs gc"
    )
    assert "deleted from the index by" in err and "WARNING" in err
    assert "Doe" not in out + err and "P-1" not in out + err
    assert await _studies(pacs, "P-1") == {uids["A"]: (1, 1, "SR"), uids["B"]: (1, 1, "CT")}

    code, out, err = await run_pacs(config, "delete", "--study", uids["A"], "--yes")

    assert code == 0, err
    assert "0 patients, 1 study, 1 series, 1 instance;" in out
    assert await _studies(pacs, "P-1") == {uids["B"]: (1, 1, "CT")}

    code, out, err = await run_pacs(config, "delete", "--patient", "P-1", "--yes")

    assert code == 0, err
    assert "1 patient, 1 study, 1 series, 1 instance;" in out
    assert await _studies(pacs, "P-1") == {}
    assert await _studies(pacs, "P-2") == {uids["C"]: (1, 1, "CT")}  # John untouched
    assert pacs.app is not None
    assert await pacs.app.index.count_instances() == 1

    for address in blobs.values():  # as if deleted an hour and more ago
        os.utime(blob_path(root, address), (TWO_HOURS_AGO, TWO_HOURS_AGO))
    code, out, err = await run_pacs(config, "gc", "--json")

    assert code == 0, err
    john = blobs[datasets[4].SOPInstanceUID]
    assert sorted(json.loads(out)["removed"]) == sorted(set(blobs.values()) - {john})
    assert rehashes(root, john)
    assert not any(blob_path(root, a).exists() for a in set(blobs.values()) - {john})
    code, out, err = await run_pacs(config, "verify")
    assert code == 0, out + err

    await pacs.app.stop()  # delivers the server's audit events too
    deleted = [e for e in _audit_events(audit_file) if e["action"] == "D"]
    assert [(e["event"], e["studies"][0]["study_instance_uid"]) for e in deleted] == [
        ("DICOM Instances Accessed", uids["A"]),
        ("DICOM Study Deleted", uids["A"]),
        ("DICOM Study Deleted", uids["B"]),
    ]
    assert deleted[0]["studies"][0]["patient_id"] == "P-1"
    assert deleted[0]["participants"][0]["requestor"] is True


async def test_delete_without_a_terminal_or_match_deletes_nothing(start_pacs: StartPacs) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None
    config = pacs.directory / "pacs.toml"
    ds = make_instance()
    assert await asyncio.to_thread(scu.store, pacs, [ds]) == [0]

    code, _, err = await run_pacs(config, "delete", "--study", ds.StudyInstanceUID)

    assert code == 4
    assert "not confirmed" in err
    assert len(await _studies(pacs, ds.PatientID)) == 1

    code, _, err = await run_pacs(config, "delete", "--instance", generate_uid(), "--yes")

    assert code == 1
    assert "nothing in the index matches" in err

    code, _, err = await run_pacs(config, "delete", "--patient", ds.PatientID, "--issuer", "X")

    assert code == 1  # the patient has no issuer: another patient, not this one

    code, _, err = await run_pacs(config, "delete", "--study", "1.2", "--series", "1.3")

    assert code == 2


async def test_stores_into_a_study_being_deleted_are_kept(start_pacs: StartPacs) -> None:
    """A study deleted while instances keep arriving for it: what the deletion planned
    goes, every instance acknowledged after stays, with its study and series recounted."""
    pacs = await start_pacs()
    assert pacs.directory is not None and pacs.app is not None
    settings = load_settings(pacs.directory / "pacs.toml", environ={})
    study, series = generate_uid(), generate_uid()

    def instance() -> Dataset:
        return make_instance(StudyInstanceUID=study, SeriesInstanceUID=series)

    first = [instance() for _ in range(20)]
    assert await asyncio.to_thread(scu.store, pacs, first) == [0] * 20
    acknowledged: list[Dataset] = list(first)
    stop = threading.Event()

    def keep_storing() -> None:
        while not stop.is_set():
            batch = [instance() for _ in range(3)]
            for ds, status in zip(batch, scu.store(pacs, batch), strict=True):
                assert status == 0
                acknowledged.append(ds)

    planned: list[DeletionPlan] = []

    def confirm(plan: DeletionPlan) -> bool:
        planned.append(plan)
        return True

    storing = asyncio.create_task(asyncio.to_thread(keep_storing))
    try:
        outcome = await delete_from_index(settings, Selection(Level.STUDY, study), confirm)
        during = len(acknowledged)
        async with asyncio.timeout(60):
            while len(acknowledged) < during + 6:  # stores go on after the delete
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await storing

    assert outcome.removed is not None
    assert outcome.removed.instances == len(planned[0].instance_uids) >= 20
    left = [ds for ds in acknowledged if await pacs.app.index.get_instance(ds.SOPInstanceUID)]
    assert len(left) == len(acknowledged) - outcome.removed.instances
    assert len(left) >= 6
    assert await _studies(pacs, first[0].PatientID) == {study: (1, len(left), "CT")}
    series_matches = await _find(
        pacs,
        "SERIES",
        StudyInstanceUID=study,
        SeriesInstanceUID="",
        NumberOfSeriesRelatedInstances="",
    )
    assert [int(m.NumberOfSeriesRelatedInstances) for m in series_matches] == [len(left)]


async def test_delete_asks_on_a_terminal_and_goes_ahead_on_yes(start_pacs: StartPacs) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None
    kept, deleted = make_instance(), make_instance(PatientID="P-9")
    assert await asyncio.to_thread(scu.store, pacs, [kept, deleted]) == [0, 0]
    terminal, user = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pacs",
        "delete",
        "--config",
        str(pacs.directory / "pacs.toml"),
        "--patient",
        "P-9",
        stdin=user,
        stdout=asyncio.subprocess.PIPE,
        stderr=user,
    )
    os.close(user)
    try:
        os.write(terminal, b"y\n")
        reading = asyncio.create_task(asyncio.to_thread(read_all, terminal))
        out, _ = await process.communicate()
        asked = await reading
    finally:
        os.close(terminal)

    assert process.returncode == 0, asked
    assert "about to delete from the index: 1 instance in 1 series of 1 study" in asked
    assert "Doe" not in asked
    assert "deleted from the index: 1 patient, 1 study" in out.decode()
    assert await _studies(pacs, "P-9") == {}
    assert len(await _studies(pacs, kept.PatientID)) == 1
