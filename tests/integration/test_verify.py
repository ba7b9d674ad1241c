"""`pacs verify` against a real server's index and store, on SQLite and PostgreSQL."""

import asyncio
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs, write_config
from tests.integration.serve_process import run_pacs_apart
from tests.integration.terminal import run_on_terminal

STORED = 4


async def _run_verify(config: Path, *args: str) -> tuple[int, str, str]:
    """Run `pacs verify`; return its exit code, stdout and stderr apart."""
    return await run_pacs_apart("verify", "--config", str(config), *args)


async def _verify_json(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = await _run_verify(config, "--json", *args)
    assert code in (0, 1), err
    return code, json.loads(out)


async def _store(pacs: PacsAddress) -> dict[str, tuple[str, int]]:
    """Store STORED instances; return SOP Instance UID -> (blob address, size) from the index."""
    datasets = [make_instance(InstanceNumber=n) for n in range(STORED)]
    assert await asyncio.to_thread(scu.store, pacs, datasets) == [0] * STORED
    assert pacs.app is not None
    blobs = {}
    for ds in datasets:
        row = await pacs.app.index.get_instance(ds.SOPInstanceUID)
        assert row is not None
        blobs[ds.SOPInstanceUID] = (row.blob_sha256, row.blob_size)
    return blobs


def _blob_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256


def _findings(report: dict[str, Any]) -> set[tuple[str, str, str | None]]:
    return {(f["kind"], f["address"], f["sop_instance_uid"]) for f in report["findings"]}


async def test_a_clean_archive_verifies_and_every_blob_is_rehashed(start_pacs: StartPacs) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None
    blobs = await _store(pacs)

    code, report = await _verify_json(pacs.directory / "pacs.toml")

    assert code == 0, report
    assert report["ok"] is True
    assert report["findings"] == []
    counts = report["counts"]
    assert counts["instances_indexed"] == STORED
    assert counts["blobs_stored"] == STORED
    assert counts["blobs_rehashed"] == STORED
    assert counts["bytes_rehashed"] == sum(size for _, size in blobs.values())
    assert counts["mb_per_s"] > 0
    assert set(report["findings_by_kind"].values()) == {0}

    code, out, _ = await _run_verify(pacs.directory / "pacs.toml")

    assert code == 0
    assert out.splitlines()[0].startswith(f"{STORED} instances indexed, {STORED} blobs stored, ")
    assert out.splitlines()[-1] == "no problems found"


async def test_verify_finds_corrupt_missing_and_unreferenced_blobs_and_stale_staging(
    start_pacs: StartPacs,
) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None
    blobs = await _store(pacs)
    root = pacs.directory / "store"
    (corrupt_uid, (corrupt, _)), (missing_uid, (missing, _)) = list(blobs.items())[:2]
    with _blob_path(root, corrupt).open("r+b") as blob:
        blob.seek(200)
        blob.write(b"\xff" * 16)
    _blob_path(root, missing).unlink()
    orphan_bytes = b"a blob that no instance references"
    orphan = hashlib.sha256(orphan_bytes).hexdigest()
    _blob_path(root, orphan).parent.mkdir(parents=True, exist_ok=True)
    _blob_path(root, orphan).write_bytes(orphan_bytes)
    an_hour_ago = time.time() - 3600
    os.utime(_blob_path(root, orphan), (an_hour_ago, an_hour_ago))
    being_indexed = b"a blob whose index row is still being written"
    _blob_path(root, hashlib.sha256(being_indexed).hexdigest()).parent.mkdir(
        parents=True, exist_ok=True
    )
    _blob_path(root, hashlib.sha256(being_indexed).hexdigest()).write_bytes(being_indexed)
    staging = root / ".staging"
    (staging / "left-by-a-crash.part").write_bytes(b"partial")
    os.utime(staging / "left-by-a-crash.part", (an_hour_ago, an_hour_ago))
    (staging / "being-received.part").write_bytes(b"partial")
    config = pacs.directory / "pacs.toml"

    code, report = await _verify_json(config)

    assert code == 1
    assert report["ok"] is False
    assert _findings(report) == {
        ("corrupt", corrupt, corrupt_uid),
        ("missing", missing, missing_uid),
        ("unreferenced", orphan, None),
        ("stale_staging", "left-by-a-crash.part", None),
    }
    counts = report["counts"]
    assert counts["instances_indexed"] == STORED
    assert counts["blobs_stored"] == STORED + 1  # one deleted, two unreferenced added
    assert counts["blobs_rehashed"] == STORED - 1
    assert counts["staging_in_progress"] == 1
    assert counts["blobs_being_indexed"] == 1

    code, sampled = await _verify_json(config, "--sample", "0")

    assert code == 1
    assert _findings(sampled) == _findings(report) - {("corrupt", corrupt, corrupt_uid)}
    assert sampled["counts"]["blobs_rehashed"] == 0

    code, out, err = await _run_verify(config)

    assert code == 1
    assert "re-hashing" not in err  # no progress bar when stderr is not a terminal
    lines = out.splitlines()
    assert {"missing: 1", "corrupt: 1", "unreferenced: 1", "stale_staging: 1"} <= set(lines)
    assert any(line.startswith(f"corrupt {corrupt} {corrupt_uid}: ") for line in lines)
    assert "Doe" not in out  # the instances' patient name
    assert lines[-1] == "4 problems found"


async def test_verify_creates_nothing_when_the_database_does_not_exist(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    config = write_config(tmp_path)

    code, out, err = await _run_verify(config)

    assert code == 3, out + err
    assert "does not exist" in err
    assert "Traceback" not in err
    assert not (tmp_path / "index.sqlite").exists()


async def test_a_sample_outside_0_to_100_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = await _run_verify(write_config(tmp_path), "--sample", "150")

    assert code == 2
    assert "from 0 to 100" in err


async def test_verify_beside_a_server_that_keeps_storing_reports_nothing_wrong(
    start_pacs: StartPacs,
) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None
    await _store(pacs)
    stop = threading.Event()
    stored: list[int] = []

    def keep_storing() -> None:
        while not stop.is_set():
            stored.extend(scu.store(pacs, [make_instance() for _ in range(4)]))

    storing = asyncio.create_task(asyncio.to_thread(keep_storing))
    try:
        async with asyncio.timeout(60):
            while len(stored) < 8:  # the sender is under way
                await asyncio.sleep(0.05)
        reports = [await _verify_json(pacs.directory / "pacs.toml") for _ in range(3)]
    finally:
        stop.set()
        await storing

    assert set(stored) == {0}
    assert [(code, report["findings"]) for code, report in reports] == [(0, [])] * 3
    indexed = [report["counts"]["instances_indexed"] for _, report in reports]
    assert indexed == sorted(indexed)
    assert indexed[-1] > indexed[0]  # stores went on while verify ran


async def test_verify_draws_a_progress_bar_on_a_terminal(start_pacs: StartPacs) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None
    await _store(pacs)
    code, out, drawn = await run_on_terminal(
        "verify", "--config", str(pacs.directory / "pacs.toml")
    )

    assert code == 0, drawn
    assert "re-hashing" in drawn
    assert "re-hashing" not in out  # the bar stays off stdout
