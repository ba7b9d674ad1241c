"""Removing blobs and staging files for `pacs gc`: the file operations, none of the decisions.

A blob is removed in two steps. `take_away` renames it from its address into the
`.gc/` directory under the root, which is atomic: from then on a store of the same
bytes no longer finds it and writes its own copy, and nothing can touch it any more.
`age` then reads its modification time as it was when it left its address;
`discard` unlinks it, or `put_back` returns it. `pacs.archive.gc` decides which and
why that is safe beside a running server.

One collection at a time (`exclusive`): a second would put back, as leftovers of a
crash, blobs that the first has taken away and is deciding about. Blocking, like the
store: async callers run these in a thread.
"""

import contextlib
import errno
import fcntl
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from pacs.errors import StoreUnavailable
from pacs.store.blobstore import FileBlobStore

GC_DIR = ".gc"
_LOCK_NAME = "lock"
_ADDRESS = re.compile(r"[0-9a-f]{64}")


class BlobSweeper:
    """Takes blobs away from their addresses and removes them, or returns them."""

    def __init__(self, store: FileBlobStore) -> None:
        self._store = store
        self._holding = store.root / GC_DIR

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the store's collection lock; StoreUnavailable when another `pacs gc` has it."""
        try:
            self._holding.mkdir(exist_ok=True)
            fd = os.open(self._holding / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreUnavailable(f"cannot prepare {self._holding}: {exc.strerror}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise StoreUnavailable("another pacs gc is running on this store") from exc
                raise StoreUnavailable(f"cannot lock {self._holding}: {exc.strerror}") from exc
            yield
        finally:
            os.close(fd)  # releases the lock

    def leftovers(self) -> list[str]:
        """Addresses taken away by a collection that stopped before deciding (a crash)."""
        try:
            names = os.listdir(self._holding)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if _ADDRESS.fullmatch(name))

    def take_away(self, sha256: str) -> bool:
        """Move a blob from its address into `.gc/`; False when it is not stored."""
        for _ in range(2):
            try:
                os.replace(self._store.path_of(sha256), self._holding / sha256)
            except FileNotFoundError:
                if self._holding.is_dir():
                    return False
                self._holding.mkdir(exist_ok=True)
                continue
            return True
        return False

    def age(self, sha256: str) -> float | None:
        """Seconds since a taken-away blob was last written or deduplicated onto."""
        try:
            mtime = (self._holding / sha256).stat().st_mtime
        except FileNotFoundError:
            return None
        return time.time() - mtime

    def put_back(self, sha256: str) -> None:
        """Return a taken-away blob to its address.

        A store that came meanwhile may have written the same bytes there; the rename
        replaces them with identical ones.
        """
        os.replace(self._holding / sha256, self._store.path_of(sha256))

    def discard(self, sha256: str) -> int:
        """Remove a taken-away blob for good; return its size in bytes (0 if gone)."""
        path = self._holding / sha256
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def remove_staging(self, name: str, older_than: float) -> int | None:
        """Remove a staging file not written for `older_than` seconds; its size, or None
        when it is gone or was written since it was listed (a store still under way)."""
        return remove_staging_file(self._store.staging_dir, name, older_than)


def remove_staging_file(directory: Path, name: str, older_than: float) -> int | None:
    """`remove_staging` for a staging directory of any backend."""
    path = directory / name
    if Path(name).name != name:
        raise ValueError(f"not a staging file name: {name!r}")
    try:
        stat = path.stat()
        if time.time() - stat.st_mtime < older_than:
            return None
        path.unlink()
    except FileNotFoundError:
        return None
    return stat.st_size
