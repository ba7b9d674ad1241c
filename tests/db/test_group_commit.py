"""Group commit against a real store and a real index: batching, and whom a failure fails.

No network: each instance is staged as ingest stages it (its Part 10 bytes in the store,
the file's commit left running in a store thread, its record read from its header) and
handed to GroupCommit, which writes through the Index the app opens (SQLite: the writer
thread) on the per-test database.
"""

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmwrite
from pydicom.dataset import Dataset

from pacs.archive.group_commit import GroupCommit
from pacs.archive.records import record_for
from pacs.archive.staged import StagedInstance
from pacs.dicom.header import split_by_level
from pacs.errors import StoreUnavailable
from pacs.index.engine import AsyncEngine
from pacs.index.records import AddKind, AddOutcome, DuplicatePolicy, InstanceRecord
from pacs.index.repository import Index
from pacs.index.schema import upgrade_to_head
from pacs.store.blobstore import FileBlobStore
from pacs.threads import ThreadPools
from tests.conftest import DatasetFactory, blob_store


class RecordingIndex:
    """The real Index, noting the SOP Instance UIDs of every batch it is asked to add."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.batches: list[list[str]] = []

    async def add_instances(
        self,
        records: list[InstanceRecord],
        policy: DuplicatePolicy,
        files_stored: Sequence[Future[Any]] = (),
    ) -> list[AddOutcome]:
        self.batches.append([record.sop_instance_uid for record in records])
        return await self.index.add_instances(records, policy, files_stored)


@pytest.fixture
def store(tmp_path: Path, thread_pools: ThreadPools) -> FileBlobStore:
    return blob_store(tmp_path / "store", thread_pools)


@pytest.fixture
async def index(engine: AsyncEngine, thread_pools: ThreadPools) -> AsyncIterator[Index]:
    """The Index as the app opens it, on an empty database (no schema: tests migrate it)."""
    index = Index.open(engine, thread_pools.index_writer)
    try:
        yield index
    finally:
        await index.close()


def part10(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def stage(store: FileBlobStore, dataset: Dataset) -> StagedInstance:
    """Write an instance to the store and leave its commit running, as ingest does."""
    writer = store.begin()
    writer.write(part10(dataset))
    writer.start_sync()
    syntax = dataset.file_meta.TransferSyntaxUID
    record = record_for(split_by_level(dataset), syntax, writer.reference, "MODALITY")
    return StagedInstance(record, writer.commit_in_background())


def uids(staged: Sequence[StagedInstance]) -> list[str]:
    return [s.record.sop_instance_uid for s in staged]


async def test_concurrent_ingests_share_one_transaction(
    engine: AsyncEngine, index: Index, store: FileBlobStore, make_ct: DatasetFactory
) -> None:
    await upgrade_to_head(engine)
    recording = RecordingIndex(index)
    commits = GroupCommit(recording, DuplicatePolicy.KEEP)
    staged = [stage(store, make_ct(InstanceNumber=n)) for n in range(1, 6)]

    outcomes = await asyncio.gather(*(commits.add(s) for s in staged))

    assert recording.batches == [uids(staged)]
    assert [o.kind for o in outcomes] == [AddKind.STORED] * 5
    assert await index.count_instances() == 5
    assert all(store.exists(s.blob().sha256) for s in staged)


async def test_a_failed_batch_commit_fails_every_waiter_with_its_error(
    index: Index, store: FileBlobStore, make_ct: DatasetFactory
) -> None:
    # The database has no tables yet: the batch's statements fail, its files do not.
    recording = RecordingIndex(index)
    commits = GroupCommit(recording, DuplicatePolicy.KEEP)
    staged = [stage(store, make_ct()) for _ in range(3)]

    results = await asyncio.gather(*(commits.add(s) for s in staged), return_exceptions=True)

    assert recording.batches == [uids(staged)]
    first = results[0]
    assert isinstance(first, StoreUnavailable)
    assert "index database unavailable" in str(first)
    assert all(result is first for result in results)


async def test_a_file_that_cannot_be_stored_fails_only_its_own_instance(
    engine: AsyncEngine, index: Index, store: FileBlobStore, make_ct: DatasetFactory
) -> None:
    await upgrade_to_head(engine)
    recording = RecordingIndex(index)
    commits = GroupCommit(recording, DuplicatePolicy.KEEP)
    dataset = make_ct(InstanceNumber=1)
    doomed_address = hashlib.sha256(part10(dataset)).hexdigest()
    # A file where the blob's ab/ directory must be: its commit cannot put it there.
    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / doomed_address[:2]).write_bytes(b"")
    others = [stage(store, make_ct(InstanceNumber=n)) for n in (2, 3)]
    assert all(s.record.blob.sha256[:2] != doomed_address[:2] for s in others)
    doomed = stage(store, dataset)
    staged = [others[0], doomed, others[1]]

    results = await asyncio.gather(*(commits.add(s) for s in staged), return_exceptions=True)

    assert recording.batches == [uids(staged), uids(others)]
    failure = results[1]
    assert isinstance(failure, StoreUnavailable)
    assert "commit to the store" in str(failure)
    assert [r.kind for r in results if isinstance(r, AddOutcome)] == [AddKind.STORED] * 2
    assert await index.get_instance(doomed.record.sop_instance_uid) is None
    assert await index.count_instances() == 2
    assert not store.exists(doomed_address)
    assert all(store.exists(s.blob().sha256) for s in others)
    assert not any(store.staging_dir.iterdir())
