"""The store's contents for an audit (`pacs verify`): addresses in order, staging files, re-hashes.

Blocking, like the store: async callers run these in a thread. Addresses come one `ab/`
directory at a time, so memory holds 1/256 of the store's names, never all of them.
"""

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from pacs.store.blobstore import FileBlobStore
from pacs.store.staging import is_unused_spare

# Read size for re-hashing: large enough that the disk streams and system calls are few.
_READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class StagingFile:
    """A file left in the staging directory: a blob being received, or a crash's leftover."""

    name: str
    size: int
    age: float  # seconds since it was last written

    @property
    def unused_spare(self) -> bool:
        """A staging file made ahead for a blob to come (`store.staging`), not yet used."""
        return is_unused_spare(self.name, self.size)


@dataclass(frozen=True, slots=True)
class Rehash:
    """What a stored blob's bytes hash to now.

    `sha256` is None when the file is gone, or cannot be read (`error` says why).
    """

    sha256: str | None
    size: int
    error: str | None = None


class _Backing(Protocol):
    """What a listing asks of any backend's store alike."""

    @property
    def staging_dir(self) -> Path: ...

    def exists(self, sha256: str) -> bool: ...


_Store = TypeVar("_Store", bound=_Backing)


class BackendListing(Generic[_Store]):
    """The parts of a store's listing that are the same on every backend."""

    def __init__(self, store: _Store) -> None:
        self._store = store

    def staging(self) -> list[StagingFile]:
        """The files in the staging directory, with their size and age."""
        return staging_files(self._store.staging_dir)

    def exists(self, sha256: str) -> bool:
        """Whether a blob with this address is stored (False for what is no address)."""
        try:
            return self._store.exists(sha256)
        except ValueError:
            return False


class StoreListing(BackendListing[FileBlobStore]):
    """Walk a FileBlobStore in address order and re-read its blobs."""

    def prefixes(self) -> list[str]:
        """The store's `ab/` directory names, sorted."""
        return self._store.paths.prefixes()

    def addresses(self, prefix: str) -> list[str]:
        """Every address stored under `<root>/<prefix>/`, sorted."""
        return self._store.paths.addresses(prefix)

    def age(self, sha256: str) -> float | None:
        """Seconds since the blob's bytes were written (a commit's rename keeps that
        time); None when it is not stored."""
        try:
            stat = self._store.path_of(sha256).stat()
        except FileNotFoundError:
            return None
        return max(0.0, time.time() - stat.st_mtime)

    def rehash(self, sha256: str) -> Rehash:
        """Read a stored blob through and return what its bytes hash to, and how many."""
        digest = hashlib.sha256()
        buffer = bytearray(_READ_CHUNK)
        view = memoryview(buffer)
        size = 0
        try:
            with self._store.path_of(sha256).open("rb", buffering=0) as blob:
                while count := blob.readinto(view):
                    digest.update(view[:count])
                    size += count
        except FileNotFoundError:
            return Rehash(None, size)
        except OSError as exc:
            return Rehash(None, size, exc.strerror or str(exc))
        return Rehash(digest.hexdigest(), size)


def staging_files(directory: Path) -> list[StagingFile]:
    """The files in a staging directory, with their size and age (any backend's)."""
    now = time.time()
    files = []
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return []
    with entries:
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # committed or discarded meanwhile
                continue
            files.append(StagingFile(entry.name, stat.st_size, max(0.0, now - stat.st_mtime)))
    files.sort(key=lambda staged: staged.name)
    return files
