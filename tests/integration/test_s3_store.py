"""The S3 backend's store, listing and sweeper against a real S3 server (moto) on loopback."""

import base64
import contextlib
import dataclasses
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import obstore
import pytest

from benchmarks.processes import free_port
from benchmarks.s3_server import MotoServer
from pacs.config_storage import S3Settings
from pacs.errors import StoreUnavailable
from pacs.store import s3_store
from pacs.store.backends import listing, open_store, sweeper
from pacs.store.blobstore import BlobRef
from pacs.store.s3_listing import S3Listing, S3Sweeper
from pacs.store.s3_reader import FIRST_BYTES
from pacs.store.s3_staged import IN_MEMORY_BELOW, S3Blob
from pacs.store.s3_store import S3BlobStore
from pacs.threads import ThreadPools
from tests.integration.recording_proxy import Recorded, recording_proxy


@pytest.fixture
def store(tmp_path: Path, s3_settings: S3Settings, thread_pools: ThreadPools) -> S3BlobStore:
    made = open_store(tmp_path / "staging", s3_settings, commits=thread_pools.store_commits)
    assert isinstance(made, S3BlobStore)
    return made


@contextlib.contextmanager
def store_behind_proxy(
    s3_server: MotoServer, s3_settings: S3Settings, root: Path, thread_pools: ThreadPools
) -> Iterator[tuple[S3BlobStore, Recorded]]:
    """A store whose requests to the S3 server go through a proxy that records them."""
    with recording_proxy(s3_server.port) as (endpoint, recorded):
        settings = dataclasses.replace(s3_settings, endpoint=endpoint)
        yield S3BlobStore(settings, root, commits=thread_pools.store_commits), recorded


def put(store: S3BlobStore, content: bytes, size: int | None = None) -> BlobRef:
    """Stage `content` in pieces and upload it; `size` is what `begin` is told."""
    staged = store.begin(size)
    for start in range(0, len(content), 300_000):
        staged.write(content[start : start + 300_000])
    staged.start_sync()
    return staged.commit_in_background().result()


def test_a_blob_is_stored_under_its_sha256_and_read_back(store: S3BlobStore) -> None:
    content = os.urandom(10_000)

    ref = put(store, content)

    assert ref == BlobRef(hashlib.sha256(content).hexdigest(), len(content))
    assert obstore.get(store.client, store.settings.prefix + ref.sha256).bytes() == content
    with store.open(ref.sha256) as blob:
        assert blob.read() == content
    assert store.exists(ref.sha256) and store.verify(ref.sha256)
    assert store.read(ref.sha256, ref.size) == content
    with pytest.raises(ValueError, match="holds 10000 bytes, not 9999"):
        store.read(ref.sha256, ref.size - 1)
    assert not list(store.staging_dir.iterdir()), "the staging file goes once uploaded"


@pytest.mark.parametrize("announced", [0, 600_000, 900_000, IN_MEMORY_BELOW - 1])
def test_a_blob_of_a_size_known_ahead_is_uploaded_from_memory_without_a_staging_file(
    store: S3BlobStore, announced: int
) -> None:
    """Announced more or fewer bytes than written, the blob is what was written."""
    content = os.urandom(600_000)
    staged = store.begin(announced)
    staged.write(content[:1000])
    staged.write(memoryview(content)[1000:])
    assert not store.staging_dir.exists()
    with staged.open_staged() as written:
        assert written.read() == content

    ref = staged.commit_in_background().result()

    assert ref == BlobRef(hashlib.sha256(content).hexdigest(), len(content))
    assert obstore.get(store.client, store.key(ref.sha256)).bytes() == content
    assert staged.confirm() is None  # created: nothing kept
    assert not store.staging_dir.exists()


def test_a_blob_of_a_size_known_ahead_from_the_memory_bound_is_staged(
    store: S3BlobStore,
) -> None:
    staged = store.begin(IN_MEMORY_BELOW)
    staged.write(b"x")

    assert len(list(store.staging_dir.iterdir())) == 1
    staged.discard()
    assert not list(store.staging_dir.iterdir())


def test_storing_the_same_bytes_again_succeeds_and_keeps_one_object(store: S3BlobStore) -> None:
    content = os.urandom(5_000)

    first, second = put(store, content), put(store, content)

    assert first == second
    stored = [
        m["path"]
        for chunk in obstore.list(store.client, store.settings.prefix.rstrip("/"))
        for m in chunk
    ]
    assert stored == [store.settings.prefix + first.sha256]


def test_a_large_blob_is_read_in_ranges_and_seeks_without_requests(store: S3BlobStore) -> None:
    content = os.urandom(3 * FIRST_BYTES + 12_345)
    ref = put(store, content)

    with store.open(ref.sha256) as blob:
        assert blob.seek(0, io.SEEK_END) == len(content)
        blob.seek(FIRST_BYTES - 10)
        assert blob.read(20) == content[FIRST_BYTES - 10 : FIRST_BYTES + 10]
        blob.seek(0)
        pieces = iter(lambda: blob.read(FIRST_BYTES), b"")
        assert b"".join(pieces) == content
    assert store.verify(ref.sha256)


def test_absent_and_altered_blobs(store: S3BlobStore) -> None:
    ref = put(store, b"original bytes")
    absent = hashlib.sha256(b"never stored").hexdigest()
    obstore.put(store.client, store.key(ref.sha256), b"altered bytes")

    assert not store.verify(ref.sha256)
    assert not store.exists(absent) and not store.verify(absent)
    with pytest.raises(FileNotFoundError):
        store.open(absent)
    with pytest.raises(FileNotFoundError):
        store.read(absent, 13)


def test_a_discarded_blob_leaves_nothing(store: S3BlobStore) -> None:
    staged = store.begin()
    staged.write(b"half an instance")
    staged.discard()
    staged.discard()

    assert not list(store.staging_dir.iterdir())
    assert S3Listing(store).addresses(hashlib.sha256(b"half an instance").hexdigest()[:2]) == []


def test_listing_gives_addresses_by_their_first_digits_in_order(store: S3BlobStore) -> None:
    refs = sorted(put(store, os.urandom(100)).sha256 for _ in range(6))
    held = listing(store)

    found = [a for prefix in held.prefixes() for a in held.addresses(prefix)]

    assert found == refs
    assert held.rehash(refs[0]).sha256 == refs[0]
    age = held.age(refs[0])
    assert age is not None and age < 600


def test_the_sweeper_takes_away_puts_back_and_discards(store: S3BlobStore) -> None:
    kept, removed = put(store, b"kept"), put(store, b"removed")
    removals = sweeper(store)
    assert isinstance(removals, S3Sweeper)

    with removals.exclusive():
        with pytest.raises(StoreUnavailable, match="another pacs gc"), S3Sweeper(store).exclusive():
            pass
        assert removals.take_away(kept.sha256) and removals.take_away(removed.sha256)
        assert not store.exists(kept.sha256)
        assert removals.leftovers() == sorted([kept.sha256, removed.sha256])
        removals.put_back(kept.sha256)
        assert removals.discard(removed.sha256) == len(b"removed")

    assert store.verify(kept.sha256) and not store.exists(removed.sha256)
    assert removals.leftovers() == []
    with S3Sweeper(store).exclusive():  # the lock went with the collection
        pass


def test_an_unreachable_object_store_fails_the_commit_and_reads(
    tmp_path: Path, thread_pools: ThreadPools, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "pacs-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "pacs-test-secret")
    nobody = MotoServer(port=free_port())  # nothing listens there
    settings = S3Settings(MotoServer.BUCKET, nobody.endpoint)
    store = S3BlobStore(settings, tmp_path, commits=thread_pools.store_commits)
    address = hashlib.sha256(b"x").hexdigest()

    staged = store.begin()
    staged.write(b"x")
    with pytest.raises(StoreUnavailable, match="object store: cannot store"):
        staged.commit_in_background().result()
    with pytest.raises(StoreUnavailable):
        store.exists(address)
    with pytest.raises(OSError, match="object store: cannot read"):
        store.open(address)
    with pytest.raises(OSError, match="object store: cannot read"):
        store.read(address, 1)
    with pytest.raises(StoreUnavailable):
        store.probe()


@pytest.mark.parametrize("in_memory", [False, True], ids=["staged", "in memory"])
def test_an_upload_is_a_conditional_create_carrying_the_blobs_sha256(
    tmp_path: Path,
    s3_settings: S3Settings,
    s3_server: MotoServer,
    thread_pools: ThreadPools,
    in_memory: bool,
) -> None:
    content = os.urandom(70_000)
    address = hashlib.sha256(content).hexdigest()
    with store_behind_proxy(s3_server, s3_settings, tmp_path, thread_pools) as (store, recorded):
        assert put(store, content, len(content) if in_memory else None).sha256 == address

    [(path, headers)] = [(p, h) for method, p, h in recorded.requests if method == "PUT"]
    assert path == f"/{s3_settings.bucket}/{s3_settings.prefix}{address}"
    assert headers["if-none-match"] == "*"
    # S3 checks both against the bytes it received before answering: the checksum, and
    # the signed payload hash, which is the blob's address itself.
    assert headers["x-amz-checksum-sha256"] == base64.b64encode(bytes.fromhex(address)).decode()
    assert headers["x-amz-content-sha256"] == address


def test_a_blob_from_the_multipart_size_goes_up_in_parts(
    store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_store, "MULTIPART_FROM", 4 << 20)
    monkeypatch.setattr(s3_store, "PART_BYTES", 5 << 20)  # S3's least part size
    content = os.urandom(6 << 20)

    ref = put(store, content)

    assert store.verify(ref.sha256)
    etag = obstore.head(store.client, store.key(ref.sha256))["e_tag"]
    assert etag is not None and etag.endswith('-2"')  # a multipart upload's, of 2 parts


@pytest.mark.parametrize("in_memory", [False, True], ids=["staged", "in memory"])
def test_only_an_upload_that_found_its_object_confirms_it_and_stores_it_again_if_gone(
    tmp_path: Path,
    s3_settings: S3Settings,
    s3_server: MotoServer,
    thread_pools: ThreadPools,
    in_memory: bool,
) -> None:
    """A blob held in memory keeps its bytes there for the confirmation, not in a file."""
    content = os.urandom(20_000)
    address = hashlib.sha256(content).hexdigest()
    with store_behind_proxy(s3_server, s3_settings, tmp_path, thread_pools) as (store, recorded):

        def staged() -> S3Blob:
            blob = store.begin(len(content) if in_memory else None)
            blob.write(content)
            assert blob.commit_in_background().result().sha256 == address
            return blob

        def methods_since(start: int) -> list[str]:
            return [method for method, _, _ in recorded.requests[start:]]

        def staging_files() -> int:
            return len(list(store.staging_dir.iterdir())) if store.staging_dir.exists() else 0

        created = staged()
        assert created.confirm() is None  # a new blob: no request more than its PUT
        assert methods_since(0) == ["PUT"]
        assert staging_files() == 0

        found = staged()
        assert methods_since(1) == ["PUT", "PUT"]  # the conditional PUT, refused; the claim
        assert staging_files() == (0 if in_memory else 1)  # kept for the confirmation
        obstore.delete(store.client, store.key(address))  # as gc's take-away does
        deleted = len(recorded.requests)
        confirming = found.confirm()
        assert confirming is not None and confirming.result().sha256 == address
        assert methods_since(deleted) == ["HEAD", "PUT"]  # gone: uploaded again
        assert staging_files() == 0

        abandoned = staged()  # an ingest that failed after its upload: no confirmation
        abandoned.discard()
        assert staging_files() == 0

        # Read while the proxy still runs: the store's client knows no other endpoint.
        assert obstore.get(store.client, store.key(address)).bytes() == content
    assert store.staging_dir.exists() != in_memory
