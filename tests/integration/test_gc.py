"""`pacs gc` against a real server's index and store, on SQLite and PostgreSQL."""

import asyncio
import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from pydicom import Dataset

from pacs.admin import collect_garbage
from pacs.archive.gc import GcReport
from pacs.config import load_settings
from pacs.store.blobstore import FileBlobStore
from pacs.store.gc import BlobSweeper
from pacs.threads import ThreadPools
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs
from tests.integration.serve_process import run_pacs_apart
from tests.integration.terminal import run_on_terminal

TWO_HOURS_AGO = time.time() - 7200


async def run_pacs(config: Path, *args: str) -> tuple[int, str, str]:
    """Run a `pacs` command; return its exit code, stdout and stderr apart."""
    return await run_pacs_apart(*args, "--config", str(config))


async def _gc_json(config: Path, *args: str) -> dict[str, Any]:
    code, out, err = await run_pacs(config, "gc", "--json", *args)
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


def blob_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256


def _write_blob(root: Path, content: bytes, mtime: float | None = None) -> str:
    address = hashlib.sha256(content).hexdigest()
    path = blob_path(root, address)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return address


async def indexed_blobs(pacs: PacsAddress, datasets: list[Dataset]) -> dict[str, str]:
    """SOP Instance UID -> the blob address the index holds for it."""
    assert pacs.app is not None
    blobs = {}
    for ds in datasets:
        row = await pacs.app.index.get_instance(ds.SOPInstanceUID)
        assert row is not None, ds.SOPInstanceUID
        blobs[ds.SOPInstanceUID] = row.blob_sha256
    return blobs


def rehashes(root: Path, address: str) -> bool:
    path = blob_path(root, address)
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == address


async def test_gc_removes_old_unreferenced_blobs_and_stale_staging_and_nothing_else(
    start_pacs: StartPacs,
) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None
    root, config = pacs.directory / "store", pacs.directory / "pacs.toml"
    datasets = [make_instance(InstanceNumber=n) for n in range(3)]
    assert await asyncio.to_thread(scu.store, pacs, datasets) == [0] * 3
    referenced = await indexed_blobs(pacs, datasets)
    for address in referenced.values():  # referenced blobs go nowhere, however old
        os.utime(blob_path(root, address), (TWO_HOURS_AGO, TWO_HOURS_AGO))
    old_orphan = _write_blob(root, b"written before a crash", TWO_HOURS_AGO)
    young_orphan = _write_blob(root, b"its index row is being written")
    staging = root / ".staging"
    (staging / "left-by-a-crash.part").write_bytes(b"partial")
    os.utime(staging / "left-by-a-crash.part", (TWO_HOURS_AGO, TWO_HOURS_AGO))
    (staging / "being-received.part").write_bytes(b"partial")
    (staging / "made-ahead.spare").touch()
    os.utime(staging / "made-ahead.spare", (TWO_HOURS_AGO, TWO_HOURS_AGO))

    dry = await _gc_json(config, "--dry-run")

    assert dry["dry_run"] is True
    assert dry["removed"] == [old_orphan]
    assert dry["counts"]["blobs_removed"] == 1
    assert dry["counts"]["staging_removed"] == 1
    assert blob_path(root, old_orphan).exists()
    assert (staging / "left-by-a-crash.part").exists()

    report = await _gc_json(config)

    counts = report["counts"]
    assert report["removed"] == [old_orphan]
    assert counts["instances_indexed"] == 3
    assert counts["blobs_stored"] == 5
    assert counts["unreferenced"] == 2
    assert counts["blobs_removed"] == 1
    assert counts["bytes_removed"] == len(b"written before a crash")
    assert counts["kept_young"] == 1
    assert counts["staging_removed"] == 1
    assert counts["staging_in_progress"] == 1
    assert not blob_path(root, old_orphan).exists()
    assert blob_path(root, young_orphan).exists()
    assert all(rehashes(root, address) for address in referenced.values())
    left = {p.name for p in staging.iterdir() if not p.name.endswith(".spare")}
    assert left == {"being-received.part"}
    assert (staging / "made-ahead.spare").exists()  # a server's spare, unused: not a leftover
    code, out, err = await run_pacs(config, "verify")
    assert code == 0, out + err

    code, out, _ = await run_pacs(config, "gc")

    assert code == 0
    assert out.splitlines()[1] == "removed 0 blobs (0.0 MB)"


async def test_a_second_gc_at_the_same_time_is_refused(start_pacs: StartPacs) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None
    settings = load_settings(pacs.directory / "pacs.toml", environ={})
    with ThreadPools() as pools:
        sweeper = BlobSweeper(FileBlobStore(settings.storage.root, commits=pools.store_commits))
        with sweeper.exclusive():
            code, _, err = await run_pacs(pacs.directory / "pacs.toml", "gc")

    assert code == 3
    assert "another pacs gc is running" in err


async def store_while_collecting(
    pacs: PacsAddress, datasets: list[Dataset]
) -> tuple[list[int], list[GcReport]]:
    """C-STORE `datasets` six to an association while collections run without pause.

    Returns the statuses, and the reports of those collections and of one after the stores.
    """
    assert pacs.app is not None
    settings = pacs.app.settings
    statuses: list[int] = []
    storing_done = threading.Event()

    def store_in_batches() -> None:
        try:
            for start in range(0, len(datasets), 6):
                statuses.extend(scu.store(pacs, datasets[start : start + 6]))
        finally:
            storing_done.set()

    def collect_until_stored() -> list[GcReport]:
        reports: list[GcReport] = []
        while not storing_done.is_set() or not reports:
            reports.append(asyncio.run(collect_garbage(settings)))
        return reports

    storing = asyncio.to_thread(store_in_batches)
    collecting = asyncio.to_thread(collect_until_stored)
    _, reports = await asyncio.gather(storing, collecting)
    reports.append(await collect_garbage(settings))
    return statuses, reports


async def test_blobs_deduplicated_onto_while_gc_runs_are_kept(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    """Stores deduplicate onto old unreferenced blobs while collections run without pause:
    every acknowledged instance keeps a blob that re-hashes, the other orphans go."""
    # The instances' exact bytes as a server stores them, made by a first server
    # (on a database of its own) and copied into the second's store as old orphans.
    maker = await start_pacs(database={"url": f"sqlite+aiosqlite:///{tmp_path / 'maker.db'}"})
    pacs = await start_pacs()
    assert maker.directory is not None and pacs.directory is not None
    root = pacs.directory / "store"
    datasets = [make_instance(InstanceNumber=n) for n in range(240)]
    assert await asyncio.to_thread(scu.store, maker, datasets) == [0] * len(datasets)
    made = await indexed_blobs(maker, datasets)
    for address in made.values():
        blob_path(root, address).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(blob_path(maker.directory / "store", address), blob_path(root, address))
        os.utime(blob_path(root, address), (TWO_HOURS_AGO, TWO_HOURS_AGO))
    to_store, never_stored = datasets[::2], datasets[1::2]

    statuses, reports = await store_while_collecting(pacs, to_store)

    assert statuses == [0] * len(to_store)
    stored = await indexed_blobs(pacs, to_store)
    assert stored == {uid: made[uid] for uid in stored}  # the same bytes: deduplicated
    assert all(rehashes(root, address) for address in stored.values())
    assert not any(blob_path(root, made[ds.SOPInstanceUID]).exists() for ds in never_stored)
    removed = [address for report in reports for address in report.removed]
    assert sorted(removed) == sorted(set(removed))
    assert set(removed) >= {made[ds.SOPInstanceUID] for ds in never_stored}
    assert len(reports) > 2  # collections ran while the stores went on


async def test_gc_draws_a_progress_bar_on_a_terminal(start_pacs: StartPacs) -> None:
    pacs = await start_pacs()
    assert pacs.directory is not None
    assert await asyncio.to_thread(scu.store, pacs, [make_instance()]) == [0]
    code, out, drawn = await run_on_terminal("gc", "--config", str(pacs.directory / "pacs.toml"))

    assert code == 0, drawn
    assert "scanning" in drawn
    assert "scanning" not in out
