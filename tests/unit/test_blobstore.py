"""FileBlobStore: streamed writes, content addresses, dedup, discard, verify, space checks."""

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pacs.errors import StoreFull, StoreUnavailable
from pacs.store.blobstore import STAGING_DIR, BlobRef, FileBlobStore
from pacs.store.layout import BlobLayout, detect_layout
from pacs.store.listing import StoreListing
from pacs.threads import ThreadPools
from tests.conftest import blob_store

CONTENT = b"DICM" + bytes(range(256)) * 10
DIGEST = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def store(tmp_path: Path, thread_pools: ThreadPools) -> FileBlobStore:
    return blob_store(tmp_path / "store", thread_pools)


def put(store: FileBlobStore, data: bytes) -> BlobRef:
    with store.begin() as writer:
        writer.write(data[:100])
        writer.write(memoryview(data)[100:])
        return writer.commit()


def test_commit_returns_digest_and_size_of_the_streamed_fragments(store: FileBlobStore) -> None:
    assert put(store, CONTENT) == BlobRef(DIGEST, len(CONTENT))


def test_blob_lives_in_the_directory_of_its_hex_prefix(store: FileBlobStore) -> None:
    put(store, CONTENT)

    path = store.root / DIGEST[:2] / DIGEST
    assert store.path_of(DIGEST) == path
    assert path.read_bytes() == CONTENT
    assert store.exists(DIGEST)
    with store.open(DIGEST) as blob:
        assert blob.read() == CONTENT


def test_size_counts_bytes_of_non_byte_memoryviews(store: FileBlobStore) -> None:
    words = memoryview(bytearray(8)).cast("I")
    with store.begin() as writer:
        writer.write(words)
        assert writer.size == 8
        assert writer.commit().size == 8


def test_flush_makes_written_bytes_readable_from_the_staging_file(
    store: FileBlobStore,
) -> None:
    with store.begin() as writer:
        writer.write(CONTENT)
        writer.flush()

        assert writer.staging_path.read_bytes() == CONTENT


def test_identical_content_is_stored_once(store: FileBlobStore) -> None:
    first = put(store, CONTENT)
    second = put(store, CONTENT)

    assert first == second
    assert list(store.iter_addresses()) == [DIGEST]
    assert list(store.staging_dir.iterdir()) == []


def test_leaving_the_block_without_commit_discards_the_staging_file(
    store: FileBlobStore,
) -> None:
    with store.begin() as writer:
        writer.write(CONTENT)
        staging = writer.staging_path
        assert staging.is_file()

    assert not staging.exists()
    assert not store.exists(DIGEST)
    writer.discard()  # idempotent


def test_writing_after_discard_is_refused(store: FileBlobStore) -> None:
    writer = store.begin()
    writer.discard()

    with pytest.raises(ValueError, match="discarded"):
        writer.write(b"x")


def test_verify_detects_an_altered_file(store: FileBlobStore) -> None:
    put(store, CONTENT)
    assert store.verify(DIGEST)

    store.path_of(DIGEST).write_bytes(CONTENT[:-1] + b"\x00")

    assert not store.verify(DIGEST)


def test_read_gives_a_blob_of_the_size_the_index_says_whole(store: FileBlobStore) -> None:
    with store.begin() as writer:
        writer.write(b"seventeen bytes!!")
        ref = writer.commit()

    assert store.read(ref.sha256, ref.size) == b"seventeen bytes!!"
    with pytest.raises(ValueError, match="it holds more than 16 bytes"):
        store.read(ref.sha256, 16)
    with pytest.raises(ValueError, match="it ended after 17 of its 18 bytes"):
        store.read(ref.sha256, 18)
    store.delete(ref.sha256)
    with pytest.raises(FileNotFoundError):
        store.read(ref.sha256, ref.size)


def test_verify_of_a_missing_blob_is_false(store: FileBlobStore) -> None:
    assert not store.verify(DIGEST)


def test_iter_addresses_lists_every_blob_and_ignores_staging(store: FileBlobStore) -> None:
    refs = {put(store, bytes([n]) * 10).sha256 for n in range(5)}
    pending = store.begin()
    pending.write(b"half-received")

    assert set(store.iter_addresses()) == refs
    pending.discard()


def test_delete_removes_the_blob_and_tolerates_absence(store: FileBlobStore) -> None:
    put(store, CONTENT)

    store.delete(DIGEST)
    store.delete(DIGEST)

    assert not store.exists(DIGEST)


def test_begin_refuses_when_free_space_is_below_the_minimum(
    tmp_path: Path, thread_pools: ThreadPools
) -> None:
    store = blob_store(tmp_path, thread_pools, min_free_bytes=1 << 62)

    with pytest.raises(StoreFull, match="required"):
        store.begin()


def test_a_minimum_near_the_free_space_is_checked_against_a_fresh_figure(
    tmp_path: Path, thread_pools: ThreadPools
) -> None:
    store = blob_store(tmp_path, thread_pools)
    put(store, CONTENT)  # free space measured, far above a minimum of 0

    store.free_space.minimum = store.free_bytes() + 1

    with pytest.raises(StoreFull, match="required"):
        store.begin()


def test_a_staging_directory_removed_while_running_is_made_again(store: FileBlobStore) -> None:
    put(store, CONTENT)
    store.staging_dir.rmdir()

    assert put(store, CONTENT[::-1]).sha256 == hashlib.sha256(CONTENT[::-1]).hexdigest()


def test_a_blob_directory_removed_while_running_is_made_again(store: FileBlobStore) -> None:
    first = put(store, CONTENT)
    store.delete(first.sha256)
    directory = store.path_of(first.sha256).parent
    directory.rmdir()

    assert put(store, CONTENT) == first
    assert store.verify(first.sha256)


def test_store_without_fsync_still_commits(tmp_path: Path, thread_pools: ThreadPools) -> None:
    store = blob_store(tmp_path, thread_pools, fsync=False)

    assert put(store, CONTENT).sha256 == DIGEST
    assert store.verify(DIGEST)


def test_path_of_rejects_anything_but_a_hex_digest(store: FileBlobStore) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        store.path_of("../" + DIGEST[3:])


def test_a_background_commit_stores_the_blob_under_its_reference(store: FileBlobStore) -> None:
    writer = store.begin()
    writer.write(b"pixels")
    writer.start_sync()
    reference = writer.reference

    assert writer.commit_in_background().result() == reference
    assert writer.commit() == reference
    assert store.path_of(reference.sha256).read_bytes() == b"pixels"
    assert not any(store.staging_dir.iterdir())


def test_no_writes_once_the_sync_has_started(store: FileBlobStore) -> None:
    writer = store.begin()
    writer.write(b"a")
    writer.start_sync()

    with pytest.raises(ValueError, match="synced"):
        writer.write(b"b")
    writer.discard()
    assert not any(store.staging_dir.iterdir())


def test_a_failed_background_commit_raises_store_unavailable_and_leaves_nothing(
    store: FileBlobStore,
) -> None:
    writer = store.begin()
    writer.write(b"pixels")
    # A file where the blob's ab/ directory must be: the commit cannot put it there.
    directory = store.root / writer.reference.sha256[:2]
    directory.rmdir()
    directory.write_bytes(b"")

    with pytest.raises(StoreUnavailable, match="commit to the store"):
        writer.commit_in_background().result()
    writer.discard()
    assert not any(store.staging_dir.iterdir())
    assert not store.exists(writer.reference.sha256)


def test_a_writer_discarded_after_its_sync_started_is_never_stored(store: FileBlobStore) -> None:
    writer = store.begin()
    writer.write(CONTENT)
    writer.start_sync()

    writer.discard()

    assert not store.exists(DIGEST)
    assert not any(store.staging_dir.iterdir())
    with pytest.raises(ValueError, match="discarded"):
        writer.commit_in_background()


def test_spare_staging_files_are_made_after_a_commit_used_by_begin_and_closed(
    tmp_path: Path,
) -> None:
    commits = ThreadPoolExecutor(1)
    store = FileBlobStore(tmp_path, commits=commits, spare_files=2)
    put(store, CONTENT)
    assert not any(store.staging_dir.iterdir())  # a commit in the caller's thread makes none

    writer = store.begin()
    writer.write(CONTENT)
    writer.start_sync()
    assert writer.commit_in_background().result() == BlobRef(DIGEST, len(CONTENT))
    commits.shutdown(wait=True)  # the job has ended, spares made
    spares = set(store.staging_dir.iterdir())
    assert len(spares) == 2

    following = store.begin()
    assert following.staging_path in spares
    following.write(b"next")
    assert following.commit() == BlobRef(hashlib.sha256(b"next").hexdigest(), 4)

    store.close()
    assert not any(store.staging_dir.iterdir())


def test_spare_staging_files_removed_with_their_directory_are_not_used(tmp_path: Path) -> None:
    commits = ThreadPoolExecutor(1)
    store = FileBlobStore(tmp_path, commits=commits, spare_files=1)
    with store.begin() as writer:
        writer.write(CONTENT)
        writer.start_sync()
        writer.commit_in_background().result()
    commits.shutdown(wait=True)
    (spare,) = store.staging_dir.iterdir()
    spare.unlink()
    store.staging_dir.rmdir()

    assert put(store, CONTENT[::-1]).sha256 == hashlib.sha256(CONTENT[::-1]).hexdigest()
    store.close()


def test_storing_bytes_already_stored_sets_the_blobs_modification_time(
    store: FileBlobStore,
) -> None:
    put(store, CONTENT)
    path = store.path_of(DIGEST)
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))
    inode = path.stat().st_ino

    put(store, CONTENT)

    assert time.time() - path.stat().st_mtime < 60  # claimed for the coming index row
    assert path.stat().st_ino == inode  # the same file, not a second copy


def test_a_new_store_makes_its_256_blob_directories_before_its_first_blob(
    store: FileBlobStore,
) -> None:
    assert not store.root.exists()

    put(store, CONTENT)

    directories = sorted(p.name for p in store.root.iterdir() if p.name != STAGING_DIR)
    assert directories == [f"{value:02x}" for value in range(256)]
    assert [p.name for p in store.root.rglob("*") if p.is_file()] == [DIGEST]


def _two_level_store(root: Path, *contents: bytes) -> list[str]:
    """A store as versions before one-level stores wrote it: `ab/cd/<sha256>`."""
    addresses = []
    for content in contents:
        address = hashlib.sha256(content).hexdigest()
        path = root / address[:2] / address[2:4] / address
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        addresses.append(address)
    return addresses


def test_a_two_level_store_is_read_and_written_as_it_is(
    tmp_path: Path, thread_pools: ThreadPools
) -> None:
    root = tmp_path / "store"
    old = _two_level_store(root, b"first", b"second")
    store = blob_store(root, thread_pools)

    assert store.layout is BlobLayout.NESTED
    assert all(store.exists(address) for address in old)
    with store.open(old[0]) as blob:
        assert blob.read() == b"first"
    new = put(store, CONTENT).sha256

    assert (root / new[:2] / new[2:4] / new).read_bytes() == CONTENT
    assert sorted(store.iter_addresses()) == sorted([*old, new])
    listing = StoreListing(store)
    listed = [a for prefix in listing.prefixes() for a in listing.addresses(prefix)]
    assert listed == sorted([*old, new])
    assert not (root / "00").exists()  # no one-level directories made in it


def test_a_two_level_store_whose_blobs_were_all_deleted_stays_two_level(tmp_path: Path) -> None:
    root = tmp_path / "store"
    (address,) = _two_level_store(root, b"gone")
    (root / address[:2] / address[2:4] / address).unlink()

    assert detect_layout(root) is BlobLayout.NESTED


def test_a_one_level_store_is_listed_in_address_order(store: FileBlobStore) -> None:
    contents = [bytes([value]) * 10 for value in range(20)]
    addresses = sorted(put(store, content).sha256 for content in contents)

    again = FileBlobStore(store.root, commits=store.commits)
    assert again.layout is BlobLayout.FLAT
    assert sorted(again.iter_addresses()) == addresses
    listing = StoreListing(again)
    assert [a for prefix in listing.prefixes() for a in listing.addresses(prefix)] == addresses
