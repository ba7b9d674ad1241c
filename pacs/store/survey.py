"""The store's blobs described for rebuilding the index (`pacs reindex`): size, write time, path.

Blocking, like the store: async callers run it in a thread, one `ab/` directory a hop.
"""

import os
from dataclasses import dataclass

from pacs.store.blobstore import FileBlobStore
from pacs.store.listing import StoreListing


@dataclass(frozen=True, slots=True)
class BlobFile:
    """One stored blob: its address and size, when its bytes were written, and its path."""

    sha256: str
    size: int
    written: float  # st_mtime: a commit's rename keeps the staging file's time
    path: str


def prefixes(store: FileBlobStore) -> list[str]:
    """The store's `ab/` directory names, sorted."""
    return StoreListing(store).prefixes()


def survey(store: FileBlobStore, prefix: str) -> list[BlobFile]:
    """Every blob stored under `<root>/<prefix>/`, in address order; one removed meanwhile
    (by `pacs gc`) is left out."""
    found = []
    for address in StoreListing(store).addresses(prefix):
        path = store.location(address)
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            continue
        found.append(BlobFile(address, stat.st_size, stat.st_mtime, path))
    return found
