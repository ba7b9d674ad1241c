"""The store's blobs listed for rebuilding the index (`pacs reindex`): in write order, compactly.

Each blob is one 40-byte key: its write time (st_mtime_ns, 8 bytes big-endian) then the
32 bytes of its address. Sorting the keys sorts the blobs by time, then address, and a
million of them take about 80 MB. Blocking, like the store: async callers run it in a
thread, one `ab/` directory a hop.
"""

import os

from pacs.store.blobstore import FileBlobStore
from pacs.store.listing import StoreListing

_TIME_BYTES = 8


def prefixes(store: FileBlobStore) -> list[str]:
    """The store's `ab/` directory names, sorted."""
    return StoreListing(store).prefixes()


def survey(store: FileBlobStore, prefix: str) -> list[bytes]:
    """The key of every blob stored under `<root>/<prefix>/`; one removed meanwhile (by
    `pacs gc`) is left out. A commit's rename keeps the staging file's write time."""
    found = []
    for address in StoreListing(store).addresses(prefix):
        try:
            written = os.stat(store.path_of(address)).st_mtime_ns
        except FileNotFoundError:
            continue
        found.append(written.to_bytes(_TIME_BYTES, "big") + bytes.fromhex(address))
    return found


def address_of(key: bytes) -> str:
    """The address of the blob a key stands for."""
    return key[_TIME_BYTES:].hex()
