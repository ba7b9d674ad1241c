"""`pacs gc` beside stores on the S3 backend, where taking a blob away is a HEAD, a copy and
a delete rather than an atomic rename: a store that claims the blob in between keeps it.

The server is moto, run in this process so that a test can set an object's Last-Modified
back: S3 has no call for it, and an unreferenced blob must be an hour old for gc to take
it (`os.utime` does this on the filesystem, in test_gc.py).
"""

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer
from pydicom import Dataset

from benchmarks.processes import free_port
from benchmarks.s3_server import MotoServer
from pacs.admin import collect_garbage, verify_archive
from pacs.config_storage import S3Settings
from pacs.store.s3_store import S3BlobStore
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs
from tests.integration.test_gc import indexed_blobs, store_while_collecting
from tests.integration.test_s3_backend import s3_storage

TWO_HOURS = timedelta(hours=2)
WAIT = 30.0  # seconds a step of the interleaving may take before the test gives up


@pytest.fixture(scope="module")
def moto_here() -> Iterator[MotoServer]:
    """moto's server in a thread of this process, with the bucket made."""
    requests_log = logging.getLogger("werkzeug")
    level = requests_log.level
    requests_log.setLevel(logging.WARNING)  # not a line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield MotoServer.existing(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
        requests_log.setLevel(level)


@pytest.fixture
def bucket(moto_here: MotoServer, monkeypatch: pytest.MonkeyPatch) -> S3Settings:
    """[storage.s3] for one test: that bucket, under a prefix of the test's own."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "pacs-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "pacs-test-secret")
    return S3Settings(moto_here.BUCKET, moto_here.endpoint, f"test-{uuid.uuid4().hex[:12]}/")


def set_back(settings: S3Settings, address: str) -> None:
    """Make a stored blob's Last-Modified two hours old."""
    stored = s3_backends[DEFAULT_ACCOUNT_ID]["global"].get_bucket(settings.bucket)
    stored.keys[settings.prefix + address].last_modified -= TWO_HOURS


async def old_orphans(
    start_pacs: StartPacs, tmp_path: Path, settings: S3Settings, datasets: list[Dataset]
) -> tuple[PacsAddress, dict[str, str]]:
    """A server on `settings`' bucket, which holds the blobs of `datasets` as it would store
    them, two hours old, and an index that references none; and those blobs by UID.

    A first server on the same bucket and a database of its own stores them."""
    maker = await start_pacs(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'maker.db'}"},
        storage=s3_storage(settings),
    )
    pacs = await start_pacs(storage=s3_storage(settings))
    assert await asyncio.to_thread(scu.store, maker, datasets) == [0] * len(datasets)
    made = await indexed_blobs(maker, datasets)
    for address in made.values():
        set_back(settings, address)
    return pacs, made


def server_store(pacs: PacsAddress) -> S3BlobStore:
    assert pacs.app is not None and isinstance(pacs.app.store, S3BlobStore)
    return pacs.app.store


def when_taking_away(
    monkeypatch: pytest.MonkeyPatch, store: S3BlobStore, address: str, then: Callable[[], None]
) -> list[str]:
    """Run `then` in gc's take-away of `address`, between its HEAD and its copy and delete.

    Returns a list that holds the address once that happened."""
    copy = obstore.copy
    happened: list[str] = []

    def copy_after(client: Any, source: str, destination: str, **options: Any) -> None:
        if source == store.key(address) and not happened:
            happened.append(address)
            then()
        copy(client, source, destination, **options)

    monkeypatch.setattr(obstore, "copy", copy_after)
    return happened


@pytest.mark.parametrize("answered", ["before gc looks again", "after gc removed its copy"])
async def test_a_store_claiming_a_blob_gc_is_taking_away_keeps_it(
    start_pacs: StartPacs,
    tmp_path: Path,
    bucket: S3Settings,
    monkeypatch: pytest.MonkeyPatch,
    answered: str,
) -> None:
    """The store's claim (its conditional PUT finds the object, its plain PUT rewrites it)
    lands after gc's HEAD read the two-hour-old Last-Modified and before its delete; its
    index row then commits before gc asks the index again (gc puts the blob back), or
    only once gc has removed its copy (the store, checking its object before it answers
    Success, uploads it again: from memory, the instance being small, which keeps no
    staging file meanwhile)."""
    ds = make_instance()
    pacs, made = await old_orphans(start_pacs, tmp_path, bucket, [ds])
    address, store = made[ds.SOPInstanceUID], server_store(pacs)
    statuses: list[int] = []
    storing = threading.Thread(target=lambda: statuses.extend(scu.store(pacs, [ds])))
    claimed, collected = threading.Event(), threading.Event()
    upload = store.upload_body
    uploads: list[bool] = []
    staged: list[Path] = []

    def upload_then_wait_for_gc(sha256: str, body: bytes | bytearray) -> bool:
        created = upload(sha256, body)
        uploads.append(created)
        if not claimed.is_set():
            staged.extend(store.staging_dir.glob("*"))  # what is kept for the confirmation
            claimed.set()
            assert collected.wait(WAIT)  # the index row waits for this upload
        return created

    def store_meanwhile() -> None:
        storing.start()
        if answered == "before gc looks again":
            storing.join(WAIT)
        else:
            assert claimed.wait(WAIT)

    if answered == "after gc removed its copy":
        monkeypatch.setattr(store, "upload_body", upload_then_wait_for_gc)
    interleaved = when_taking_away(monkeypatch, store, address, store_meanwhile)

    assert pacs.app is not None
    report = await collect_garbage(pacs.app.settings)
    collected.set()
    await asyncio.to_thread(storing.join, WAIT)

    assert interleaved == [address] and statuses == [0]
    assert await indexed_blobs(pacs, [ds]) == made
    assert await asyncio.to_thread(store.verify, address)
    after = await verify_archive(pacs.app.settings)
    assert (after.instances_indexed, after.blobs_rehashed, after.findings) == (1, 1, ())
    if answered == "before gc looks again":
        assert (report.kept_referenced, report.removed) == (1, [])
    else:
        assert report.removed == [address]  # its copy: the store's object was deleted
        assert uploads == [False, True]  # the claim; after the HEAD found nothing, a create
        assert staged == []


async def test_blobs_deduplicated_onto_while_gc_runs_are_kept_on_s3(
    start_pacs: StartPacs, tmp_path: Path, bucket: S3Settings
) -> None:
    """Stores deduplicate onto two-hour-old unreferenced objects while collections run
    without pause: every acknowledged instance keeps an object that re-hashes, the other
    orphans go."""
    datasets = [make_instance(InstanceNumber=n) for n in range(120)]
    pacs, made = await old_orphans(start_pacs, tmp_path, bucket, datasets)
    store = server_store(pacs)
    to_store, never_stored = datasets[::2], datasets[1::2]

    statuses, reports = await store_while_collecting(pacs, to_store)

    assert statuses == [0] * len(to_store)
    stored = await indexed_blobs(pacs, to_store)
    assert stored == {uid: made[uid] for uid in stored}  # the same bytes: deduplicated
    assert all([await asyncio.to_thread(store.verify, a) for a in stored.values()])
    gone = [made[ds.SOPInstanceUID] for ds in never_stored]
    assert not any([await asyncio.to_thread(store.exists, a) for a in gone])
    removed = [address for report in reports for address in report.removed]
    assert sorted(removed) == sorted(set(removed))
    assert set(removed) >= set(gone)
    # A collection ran while the stores went on (one takes seconds on S3, the stores too).
    assert reports[0].instances_indexed < len(to_store)
