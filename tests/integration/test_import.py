"""`pacs import` beside a running server: files in, C-FIND and C-GET out, byte for byte."""

import asyncio
import io
import re
import signal
import sys
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from pacs.dicom.part10 import read_file_meta
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs, run_dcmtk
from tests.integration.terminal import run_on_terminal
from tests.integration.test_reindex import run_pacs

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def _write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


async def _folder(top: Path) -> tuple[dict[str, Path], Path, Path]:
    """Files to import: loose ones in a subfolder, two under a DICOMDIR (made by DCMTK's
    dcmmkdir), a text file and a truncated one. Returns the importable files by SOP
    Instance UID, the truncated one, and one the DICOMDIR lists that is gone."""
    study = generate_uid()
    loose = [make_instance(StudyInstanceUID=study, InstanceNumber=n) for n in (1, 2)]
    files = {
        ds.SOPInstanceUID: _write(ds, top / "loose" / f"{n}.dcm") for n, ds in enumerate(loose)
    }
    media = top / "media"
    for n in (1, 2, 3):
        ds = make_instance(PatientID="P-DIR", InstanceNumber=n)
        files[ds.SOPInstanceUID] = _write(ds, media / "DICOM" / f"IMG{n:05d}")
    code, output = await run_dcmtk(
        "dcmmkdir", "+r", "+I", "+id", str(media), "+D", str(media / "DICOMDIR"), "DICOM"
    )
    assert code == 0, output
    gone = files.popitem()[1]  # listed in the DICOMDIR, then lost
    gone.unlink()
    (top / "notes.txt").write_text("not DICOM at all, though longer than a preamble " * 4)
    whole = make_instance()
    whole.save_as(buffer := io.BytesIO(), enforce_file_format=True)
    truncated = top / "cut" / "truncated.dcm"
    truncated.parent.mkdir()
    truncated.write_bytes(buffer.getvalue()[:-100])  # inside the pixel data
    return files, truncated, gone


def _data_set_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return data[read_file_meta(io.BytesIO(data)).offset :]


def _get_study(address: PacsAddress, study_uid: str) -> tuple[int, dict[str, bytes]]:
    """C-GET a study; return the final status and each instance's data set as received."""
    received: dict[str, bytes] = {}

    def on_store(event: Any) -> None:
        received[str(event.request.AffectedSOPInstanceUID)] = event.request.DataSet.getvalue()

    statuses = scu.get_study(address, study_uid, on_store)
    return (statuses[-1] if statuses else -1), received


async def _studies(address: PacsAddress) -> list[str]:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    status, matches = await asyncio.to_thread(scu.find, address, STUDY_ROOT_FIND, identifier)
    assert status == 0
    return [str(match.StudyInstanceUID) for match in matches]


async def test_import_beside_a_running_server_stores_files_byte_exact_and_resumes(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None
    files, truncated, gone = await _folder(tmp_path / "to-import")
    config = str(pacs.directory / "pacs.toml")

    code, out, err = await run_pacs("import", "--config", config, str(tmp_path / "to-import"))

    assert code == 1, err  # the truncated file and the lost one
    lines = out.splitlines()
    assert lines[0].startswith(
        "6 files (1 DICOMDIRs read): 4 stored, 0 already stored, 0 duplicate, 1 not DICOM, "
        "2 refused;"
    )
    assert (
        lines[2] == f"refused {gone}: listed in {tmp_path / 'to-import/media/DICOMDIR'}, not found"
    )
    assert lines[1] == f"refused {truncated}: a value runs 100 bytes past the end of the data set"
    assert len(lines) == 3
    assert "Doe" not in out + err
    received: dict[str, bytes] = {}
    for study in await _studies(pacs):
        status, instances = await asyncio.to_thread(_get_study, pacs, study)
        assert status == 0
        received |= instances
    assert received == {uid: _data_set_bytes(path) for uid, path in files.items()}

    code, out, err = await run_pacs("import", "--config", config, str(tmp_path / "to-import"))

    assert code == 1, err
    assert out.startswith(
        "6 files (1 DICOMDIRs read): 0 stored, 4 already stored, 0 duplicate, 1 not DICOM, "
        "2 refused;"
    )


async def test_import_of_a_duplicate_with_other_content_meets_the_duplicate_policy(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    pacs = await start_pacs(storage={"duplicate_policy": "reject"})
    assert pacs.directory is not None and pacs.app is not None
    original = make_instance()
    assert await asyncio.to_thread(scu.store, pacs, [original]) == [0]
    stored = await pacs.app.index.get_instance(original.SOPInstanceUID)
    original.SeriesDescription = "CHANGED"
    changed = _write(original, tmp_path / "in" / "changed.dcm")

    code, out, _ = await run_pacs(
        "import", "--config", str(pacs.directory / "pacs.toml"), str(tmp_path / "in")
    )

    assert code == 1
    assert out.splitlines()[0].startswith("1 files (0 DICOMDIRs read): 0 stored,")
    assert out.splitlines()[1].startswith(f"refused {changed}: SOP Instance")
    assert "duplicate policy rejects it" in out
    after = await pacs.app.index.get_instance(original.SOPInstanceUID)
    assert stored is not None and after is not None
    assert after.blob_sha256 == stored.blob_sha256


async def test_an_interrupted_import_resumes_where_it_stopped(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None and pacs.app is not None
    total = 300
    for n in range(total):
        _write(make_instance(InstanceNumber=n), tmp_path / "in" / f"{n:04d}.dcm")
    config = str(pacs.directory / "pacs.toml")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pacs",
        "import",
        "--config",
        config,
        str(tmp_path / "in"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        while await pacs.app.index.count_instances() == 0:  # the import is under way
            await asyncio.sleep(0.02)
    process.send_signal(signal.SIGINT)
    await process.communicate()
    before = await pacs.app.index.count_instances()

    code, out, err = await run_pacs("import", "--config", config, str(tmp_path / "in"))

    assert code == 0, err
    stored, already = re.findall(r"(\d+) stored, (\d+) already stored", out)[0]
    assert process.returncode == 130 or int(stored) == 0  # it may have finished first
    assert int(already) == before
    assert int(stored) + int(already) == total
    assert await pacs.app.index.count_instances() == total


async def test_import_draws_a_progress_bar_on_a_terminal(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None
    for n in range(3):
        _write(make_instance(), tmp_path / "in" / f"{n}.dcm")
    config = str(pacs.directory / "pacs.toml")

    code, out, drawn = await run_on_terminal("import", "--config", config, str(tmp_path / "in"))

    assert code == 0, drawn
    assert "0/3 [" in drawn and " files/s]" in drawn  # total and unit; 3 go by too fast
    assert out.startswith("3 files (0 DICOMDIRs read): 3 stored,")
