"""BlobSweeper: taking blobs away from their addresses, removing or returning them."""

import hashlib
import os
import time
from pathlib import Path

import pytest

from pacs.errors import StoreUnavailable
from pacs.store.blobstore import FileBlobStore
from pacs.store.gc import BlobSweeper
from pacs.threads import ThreadPools
from tests.conftest import blob_store

CONTENT = b"DICM" + bytes(range(256))
DIGEST = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def store(tmp_path: Path, thread_pools: ThreadPools) -> FileBlobStore:
    store = blob_store(tmp_path / "store", thread_pools)
    with store.begin() as writer:
        writer.write(CONTENT)
        writer.commit()
    return store


def test_a_blob_taken_away_is_not_stored_and_keeps_its_age(store: FileBlobStore) -> None:
    sweeper = BlobSweeper(store)
    two_hours_ago = time.time() - 7200
    os.utime(store.path_of(DIGEST), (two_hours_ago, two_hours_ago))

    assert sweeper.take_away(DIGEST)

    assert not store.exists(DIGEST)
    age = sweeper.age(DIGEST)
    assert age is not None and 7100 < age < 7300
    assert sweeper.discard(DIGEST) == len(CONTENT)
    assert sweeper.leftovers() == []
    assert not sweeper.take_away(DIGEST)  # nothing left to take


def test_a_blob_put_back_is_stored_again(store: FileBlobStore) -> None:
    sweeper = BlobSweeper(store)
    sweeper.take_away(DIGEST)

    assert sweeper.leftovers() == [DIGEST]
    sweeper.put_back(DIGEST)

    assert store.verify(DIGEST)
    assert sweeper.leftovers() == []


def test_a_store_while_its_blob_is_taken_away_writes_its_own_copy(store: FileBlobStore) -> None:
    sweeper = BlobSweeper(store)
    sweeper.take_away(DIGEST)

    with store.begin() as writer:
        writer.write(CONTENT)
        writer.commit()

    assert store.verify(DIGEST)
    sweeper.discard(DIGEST)  # the copy taken away goes; the store's stays
    assert store.verify(DIGEST)


def test_only_one_collection_holds_the_lock(store: FileBlobStore) -> None:
    held = BlobSweeper(store).exclusive()
    refused = pytest.raises(StoreUnavailable, match="another pacs gc")
    with held, refused, BlobSweeper(store).exclusive():
        pass
    with BlobSweeper(store).exclusive():  # released
        pass


def test_a_staging_file_written_since_it_was_listed_is_kept(store: FileBlobStore) -> None:
    sweeper = BlobSweeper(store)
    old, fresh = store.staging_dir / "old.part", store.staging_dir / "fresh.part"
    old.write_bytes(b"abc")
    fresh.write_bytes(b"abcd")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))

    assert sweeper.remove_staging("old.part", 600) == 3
    assert sweeper.remove_staging("fresh.part", 600) is None
    assert sweeper.remove_staging("gone.part", 600) is None
    assert not old.exists() and fresh.exists()
