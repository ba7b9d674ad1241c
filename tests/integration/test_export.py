"""`pacs export --deidentify`: de-identified Part 10 files of a study or a patient, from the
command line beside a running server."""

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.uid import generate_uid

from pacs.audit.events import EventKind
from pacs.index.deidentified import pseudonyms, replacement_uids
from pacs.store.secret import SECRET_FILE
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs, run_dcmtk
from tests.integration.serve_process import run_pacs_apart
from tests.integration.terminal import run_on_terminal

PATIENT_ID, PATIENT_NAME = "EXPORT-PATIENT-3", "Roe^Richard"
PROFILE = {"dates": "shift", "retain_device_identity": True}


async def _pacs_export(config: Path, *args: str) -> tuple[int, str, str]:
    return await run_pacs_apart("export", "--config", str(config), *args)


def _exports(path: Path) -> list[dict[str, Any]]:
    """The audit file's Instances Transferred events of exports."""
    events = [json.loads(line) for line in path.read_text().splitlines()]
    kind = EventKind.INSTANCES_TRANSFERRED.value
    return [e for e in events if e["event"] == kind and "export:" in json.dumps(e)]


async def _archive(
    start_pacs: StartPacs, audit_file: Path
) -> tuple[PacsAddress, str, list[str], str]:
    """A server with the profile `research` and an audit file, holding one study of 3
    instances and one burned-in instance: the server, the study, the instances' UIDs, the
    burned-in UID."""
    pacs = await start_pacs(**{"deidentify.research": PROFILE, "audit": {"file": audit_file}})
    study, series = str(generate_uid()), str(generate_uid())
    datasets = [
        make_instance(
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            PatientID=PATIENT_ID,
            PatientName=PATIENT_NAME,
            InstanceNumber=n,
            BurnedInAnnotation="NO",
        )
        for n in range(3)
    ]
    burned = make_instance(StudyInstanceUID=study, PatientID=PATIENT_ID, BurnedInAnnotation="YES")
    assert await asyncio.to_thread(scu.store, pacs, [*datasets, burned]) == [0] * 4
    return pacs, study, [str(ds.SOPInstanceUID) for ds in datasets], str(burned.SOPInstanceUID)


async def test_export_writes_deidentified_files_that_dcmdump_reads(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    pacs, study, uids, burned = await _archive(start_pacs, tmp_path / "audit.jsonl")
    assert pacs.directory is not None and pacs.app is not None
    config, out = pacs.directory / "pacs.toml", tmp_path / "out"

    code, stdout, stderr = await _pacs_export(
        config, "--deidentify", "research", "--study", study, str(out)
    )

    assert code == 1, stderr  # the burned-in instance was left out
    assert f"left out {burned}: Burned In Annotation is YES" in stderr
    assert "exported 3 instances" in stdout
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == 3
    mapping = await replacement_uids(pacs.app.engine, "research")
    originals = [PATIENT_ID.encode(), b"Roe", b"Richard", study.encode(), *map(str.encode, uids)]
    pseudonym, shift = (await pseudonyms(pacs.app.engine, "research"))[("", PATIENT_ID)]
    for path in files:
        data = path.read_bytes()
        assert [value for value in originals if value in data] == []
        ds = dcmread(path)
        assert ds.StudyInstanceUID == mapping[study] == path.parent.parent.name
        assert ds.SeriesInstanceUID == path.parent.name
        assert ds.SOPInstanceUID == path.stem
        assert ds.SOPInstanceUID in {mapping[uid] for uid in uids}
        assert (ds.PatientID, ds.PatientName) == (pseudonym, pseudonym)
        assert ds.StudyDate != "20261122"
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        dump_code, dump = await run_dcmtk("dcmdump", str(path))
        assert dump_code == 0, dump
        assert "Roe" not in dump and pseudonym in dump
    assert shift < 0
    secret = pacs.directory / "store" / SECRET_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    (audited,) = _exports(tmp_path / "audit.jsonl")  # the export's own process wrote it
    assert [p["ae_title"] for p in audited["participants"]][1] == "export:research"
    assert audited["studies"][0]["study_instance_uid"] == study
    assert audited["description"].endswith("de-identified under profile 'research'")

    again = tmp_path / "again"
    code, _, _ = await _pacs_export(
        config, "--deidentify", "research", "--patient", PATIENT_ID, str(again)
    )
    assert code == 1
    assert sorted(f.relative_to(again) for f in again.rglob("*.dcm")) == sorted(
        f.relative_to(out) for f in files
    )


async def test_export_with_an_unknown_profile_patient_or_directory_says_so(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    pacs, study, _, _ = await _archive(start_pacs, tmp_path / "audit.jsonl")
    assert pacs.directory is not None
    config = pacs.directory / "pacs.toml"

    code, _, stderr = await _pacs_export(
        config, "--deidentify", "nosuch", "--study", study, str(tmp_path / "a")
    )
    assert code == 2
    assert "no profile 'nosuch'" in stderr

    code, _, stderr = await _pacs_export(
        config, "--deidentify", "basic", "--patient", "NOBODY", str(tmp_path / "b")
    )
    assert code == 1
    assert "nothing in the index matches" in stderr
    assert not (tmp_path / "b").exists() or not list((tmp_path / "b").rglob("*.dcm"))

    not_a_directory = tmp_path / "c"
    not_a_directory.write_text("a file")
    code, _, stderr = await _pacs_export(
        config, "--deidentify", "basic", "--study", study, str(not_a_directory)
    )
    assert code == 3
    assert stderr.startswith(f"pacs: cannot write {not_a_directory}/")


async def test_export_draws_a_progress_bar_on_a_terminal(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    pacs, study, _, _ = await _archive(start_pacs, tmp_path / "audit.jsonl")
    assert pacs.directory is not None
    config = str(pacs.directory / "pacs.toml")
    out_dir = str(tmp_path / "out")
    argv = ["export", "--config", config, "--deidentify", "basic", "--study", study, out_dir]
    code, out, drawn = await run_on_terminal(*argv)

    assert code == 1, drawn  # the burned-in instance is left out
    assert "exporting" in drawn and "4/4" in drawn
    assert "exporting" not in out  # the bar stays off stdout
