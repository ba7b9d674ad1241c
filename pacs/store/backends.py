"""The blob store [storage] names: files under its root, or objects in an S3 bucket.

The one place that knows both backends; the archive sees only `BlobStore` and the
listing and removal protocols of `pacs verify` and `pacs gc`.
"""

from concurrent.futures import Executor
from pathlib import Path

from pacs.config_storage import S3Settings
from pacs.store.blobstore import FileBlobStore
from pacs.store.gc import BlobSweeper
from pacs.store.listing import StoreListing
from pacs.store.probe import probe_root
from pacs.store.s3_listing import S3Listing, S3Sweeper
from pacs.store.s3_store import S3BlobStore

AnyStore = FileBlobStore | S3BlobStore


def open_store(
    root: Path,
    s3: S3Settings | None,
    *,
    commits: Executor,
    fsync: bool = True,
    min_free_bytes: int = 0,
    spare_files: int = 0,
) -> AnyStore:
    """The S3 backend when `s3` is given (staging under `root`), else files under `root`."""
    if s3 is not None:
        return S3BlobStore(s3, root, commits=commits, min_free_bytes=min_free_bytes)
    return FileBlobStore(
        root, commits=commits, fsync=fsync, min_free_bytes=min_free_bytes, spare_files=spare_files
    )


def probe(store: AnyStore) -> None:
    """Check that blobs can be written; StoreUnavailable says why not. Blocking."""
    if isinstance(store, S3BlobStore):
        store.probe()
    else:
        probe_root(store.root)
        store.prepare()


def store_setting(store: AnyStore) -> str:
    """The setting to fix when the store cannot be used, for messages."""
    return "[storage.s3]" if isinstance(store, S3BlobStore) else "[storage] root"


def listing(store: AnyStore) -> StoreListing | S3Listing:
    """The store listed in address order, for `pacs verify` and `pacs gc`."""
    return S3Listing(store) if isinstance(store, S3BlobStore) else StoreListing(store)


def sweeper(store: AnyStore) -> BlobSweeper | S3Sweeper:
    """The store's removals, for `pacs gc`."""
    return S3Sweeper(store) if isinstance(store, S3BlobStore) else BlobSweeper(store)
