"""Content-addressed Part 10 files: `<root>/ab/<sha256>` (`store/layout.py`), written through a
staging file."""

import contextlib
import errno
import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from pacs.errors import StoreFull, StoreUnavailable
from pacs.store.free_space import FreeSpace
from pacs.store.layout import PREFIXES, BlobLayout, BlobPaths, detect_layout
from pacs.store.staging import StagingFiles

_HASH_CHUNK = 1 << 20
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
STAGING_DIR = ".staging"


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A stored blob: its address (SHA-256 of its bytes) and its size in bytes."""

    sha256: str
    size: int


def local_failure(action: str, exc: OSError) -> StoreUnavailable:
    """What a failed local file operation means for a store: StoreFull when the
    filesystem is full, else StoreUnavailable."""
    reason = f"cannot {action}: {exc.strerror or exc}"
    if exc.errno in _NO_SPACE:
        return StoreFull(reason)
    return StoreUnavailable(reason)


def _fsync_dir(directory: Path) -> None:
    # A rename or a new entry is durable only once its directory is synced (POSIX).
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore:
    """Immutable blobs named by their SHA-256, under one root directory.

    Every method blocks on disk I/O: async callers run them with `asyncio.to_thread`.
    The staging directory lives under the root so that the final rename never
    crosses a filesystem boundary and stays atomic. Files are synced and committed in
    `commits` (`pacs.threads` owns it), one job per file, while their writers get on
    with other work. With `spare_files`, that many staging files are created ahead of
    need by those jobs once their own file is committed (`store/staging.py`; `close()`
    removes them).
    """

    def __init__(
        self,
        root: Path,
        *,
        commits: Executor,
        fsync: bool = True,
        min_free_bytes: int = 0,
        spare_files: int = 0,
    ) -> None:
        self.root = root
        self.fsync = fsync
        self.staging_dir = root / STAGING_DIR
        self.commits = commits
        self._staging = StagingFiles(self.staging_dir, spare_files)
        self._staging_ready = False
        self.free_space = FreeSpace(root, min_free_bytes)
        self._paths: BlobPaths | None = None
        # Blob directories known to exist: made once, not tried again for every blob.
        self._made_dirs: set[Path] = set()

    @property
    def paths(self) -> BlobPaths:
        """Where this store's blobs are, as plain data (for `pacs reindex`'s processes); its
        layout is read from the store the first time it is asked."""
        if self._paths is None:
            self._paths = BlobPaths(self.root, detect_layout(self.root))
        return self._paths

    @property
    def layout(self) -> BlobLayout:
        """How blobs sit under the root."""
        return self.paths.layout

    def path_of(self, sha256: str) -> Path:
        """Return where the blob with this address lives (whether or not it exists)."""
        return self.paths.of(sha256)

    def location(self, sha256: str) -> str:
        """The blob's path, for messages."""
        return str(self.path_of(sha256))

    def begin(self, size: int | None = None) -> "BlobWriter":
        """Start receiving a blob; refuse with StoreFull when free space is below the minimum.

        Every blob goes to a staging file, whatever its `size`: the file becomes the blob.
        """
        if not self._staging_ready:
            self.prepare()
        try:
            self.free_space.check()
        except OSError as exc:
            raise local_failure("prepare the staging directory", exc) from exc
        try:
            return BlobWriter(self, *self._staging.create())
        except OSError as exc:
            if self.staging_dir.is_dir():
                raise local_failure("create a staging file", exc) from exc
        # The staging directory was removed while pacs ran: make it again, once.
        self.prepare()
        try:
            return BlobWriter(self, *self._staging.create())
        except OSError as exc:
            raise local_failure("create a staging file", exc) from exc

    def make_spares(self) -> None:
        """Create staging files ahead of need, up to `spare_files` (a commit job's last step)."""
        self._staging.make_spares()

    def close(self) -> None:
        """Remove the spare staging files; call once no commit job is left to run."""
        self._staging.close()

    def prepare(self) -> None:
        """Make the staging directory and a one-level store's blob directories (blocking;
        the first `begin()` does it when the server's start-up probe has not)."""
        try:
            self.staging_dir.mkdir(parents=True, exist_ok=True)
            if self.layout is BlobLayout.FLAT:
                self._make_blob_directories()
        except OSError as exc:
            raise local_failure("prepare the staging directory", exc) from exc
        self._staging_ready = True

    def _make_blob_directories(self) -> None:
        """All 256 `ab/` directories of a one-level store, once, before its first blob."""
        made = False
        for prefix in PREFIXES:
            directory = self.root / prefix
            try:
                directory.mkdir()
                made = True
            except FileExistsError:
                pass
            self._made_dirs.add(directory)
        if made and self.fsync:
            _fsync_dir(self.root)

    def exists(self, sha256: str) -> bool:
        """Tell whether a blob with this address is stored."""
        return self.path_of(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored blob for reading; FileNotFoundError when it is not stored."""
        return self.path_of(sha256).open("rb")

    def read(self, sha256: str, size: int) -> bytes:
        """A blob of known size, whole: open, one read, close. A buffered file object
        would add a stat, a terminal check, a seek and a second read, each a moment
        without the GIL that a busy event loop then has to win back."""
        fd = os.open(self.path_of(sha256), os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, size + 1)  # one byte more: a longer file shows itself
        finally:
            os.close(fd)
        if len(data) > size:
            raise ValueError(f"it holds more than {size} bytes")
        if len(data) < size:
            raise ValueError(f"it ended after {len(data)} of its {size} bytes")
        return data

    def delete(self, sha256: str) -> None:
        """Remove a blob; removing one that is not there is not an error."""
        # Empty blob directories are left alone: removing them would race with a
        # concurrent commit that has just created its target directory.
        self.path_of(sha256).unlink(missing_ok=True)

    def verify(self, sha256: str) -> bool:
        """Re-hash a stored blob; True when its content still matches its address."""
        digest = hashlib.sha256()
        try:
            with self.open(sha256) as blob:
                while chunk := blob.read(_HASH_CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            return False
        return digest.hexdigest() == sha256

    def iter_addresses(self) -> Iterator[str]:
        """Yield the address of every stored blob (staging files are not blobs)."""
        paths = self.paths
        for prefix in paths.prefixes():
            yield from paths.addresses(prefix)

    def free_bytes(self) -> int:
        """Return the bytes available to this process on the root's filesystem."""
        return self.free_space.bytes_free()

    def rename_into_place(self, staged: Path, final: Path) -> None:
        """Move a synced staging file to its address, making its directory when it is new."""
        directory = final.parent
        known = directory in self._made_dirs
        if not known:
            _make_dirs(self.root, directory, self.fsync)
        try:
            os.replace(staged, final)
        except FileNotFoundError:
            if not known or not staged.exists():
                raise
            # The directory was removed behind pacs's back: make it again.
            _make_dirs(self.root, directory, self.fsync)
            os.replace(staged, final)
        self._made_dirs.add(directory)


def _freshen(blob: Path) -> bool:
    """Set an existing blob's modification time to now; False when there is none.

    Deduplicating onto a blob claims it for an index row about to be written: `pacs gc`
    spares a blob modified within its grace period (`pacs.archive.gc` has the argument).
    One call both checks and claims, so no collection can fall between the two.
    """
    try:
        os.utime(blob)
    except FileNotFoundError:
        return False
    except PermissionError:
        # Not pacs's own file (copied in by another user): the caller's rename puts a
        # new copy in its place, whose time is as recent as a touch would make it.
        return False
    return True


def _make_dirs(root: Path, directory: Path, fsync: bool) -> None:
    """Create a blob directory and any between it and the root (`ab/` of a two-level
    store), syncing each new entry's parent."""
    levels = [directory]
    while levels[-1].parent != root:
        levels.append(levels[-1].parent)
    for path in reversed(levels):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        if fsync:
            _fsync_dir(path.parent)


class BlobWriter:
    """One blob being received: fragments go to a staging file and are hashed on the way.

    Blocking, like the store. Use as a context manager: leaving the block without
    `commit()` discards the staging file. Once written, the file is synced and committed
    by one job in a store thread: `start_sync()` starts it, and it renames the file to its
    address only once `commit_in_background()` (or `commit()`) says so, or leaves it to
    `discard()`; one of them must follow.
    """

    def __init__(self, store: FileBlobStore, staging_path: Path, file: BinaryIO) -> None:
        self._store = store
        self._staging_path = staging_path
        self._file = file
        self._digest = hashlib.sha256()
        self._size = 0
        self._ref: BlobRef | None = None
        self._discarded = False
        # The store thread's job: whether to commit once synced, and what came of it.
        self._verdict: Future[bool] | None = None
        self._committing: Future[BlobRef] | None = None

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def reference(self) -> BlobRef:
        """The address and size of the bytes written so far: what `commit()` will return."""
        return BlobRef(self._digest.hexdigest(), self._size)

    @property
    def staging_path(self) -> Path:
        """Where the bytes are until `commit()` moves them to their address."""
        return self._staging_path

    def open_staged(self) -> BinaryIO:
        """Open the staging file for reading (the bytes written so far, once flushed)."""
        return self._staging_path.open("rb")

    def write(self, fragment: bytes | memoryview) -> None:
        """Append a fragment to the staging file and to the running digest."""
        self._check_open()
        if self._verdict is not None:
            raise ValueError("blob writer is being synced: no more writes")
        try:
            self._file.write(fragment)
        except OSError as exc:
            raise local_failure("write to the store", exc) from exc
        self._digest.update(fragment)
        self._size += memoryview(fragment).nbytes

    def flush(self) -> None:
        """Hand written bytes to the OS so the staging file can be read back (not a sync)."""
        self._check_open()
        try:
            self._file.flush()
        except OSError as exc:
            raise local_failure("write to the store", exc) from exc

    def start_sync(self) -> None:
        """Start syncing the bytes written so far in a store thread; no more writes.

        The caller meanwhile reads the file or its own copy of the bytes, then says
        whether the blob is to be stored: `commit_in_background()`, or `discard()`.
        """
        if self._verdict is None:
            self._submit(verdict=None)

    def _submit(self, *, verdict: bool | None) -> None:
        """Start the store thread's job; with a `verdict`, it need not wait for one."""
        self.flush()
        self._verdict, self._committing = Future(), Future()
        if verdict is not None:
            self._verdict.set_result(verdict)
        try:
            self._store.commits.submit(self._sync_and_commit)
        except BaseException:
            self._verdict = self._committing = None
            raise

    def commit_in_background(self) -> Future[BlobRef]:
        """Let the store thread commit the blob; the future holds its result or StoreError.

        The caller may do other work in the meantime (index the blob's reference) as
        long as it claims nothing about the blob before the future is done. Without
        `start_sync()` before, the job starts with its verdict given: the sync, the rename
        and the directory's sync follow one another in one thread, which nothing wakes.
        """
        if self._verdict is None:
            self._check_open()
            self._submit(verdict=True)
        elif not self._verdict.done():
            self._check_open()
            self._verdict.set_result(True)
        elif not self._verdict.result():
            self._check_open()  # discarded: says so
        assert self._committing is not None
        return self._committing

    def commit(self) -> BlobRef:
        """Make the blob durable under its address and return it; idempotent once done.

        Order matters for "acknowledged means durable": file data is synced before
        the rename, and the directory after it. An address that already exists holds
        identical bytes, so the staging copy is simply dropped (deduplication).
        """
        if self._verdict is not None:
            return self.commit_in_background().result()
        return self._commit_once(synced=False)

    def confirm(self) -> Future[BlobRef] | None:
        """Nothing to confirm: a blob deduplicated onto was touched, or put in place anew
        (`pacs.archive.gc`)."""
        return None

    def _sync_and_commit(self) -> None:
        """The store thread's job: fsync, wait for the verdict, commit or leave the file."""
        assert self._verdict is not None and self._committing is not None
        committing = self._committing
        sync_error: OSError | None = None
        if self._store.fsync:
            try:
                os.fsync(self._file.fileno())
            except OSError as exc:
                sync_error = exc
        try:
            if not self._verdict.result():
                raise ValueError("blob writer was discarded")
            if sync_error is not None:
                self._drop()
                raise local_failure("commit to the store", sync_error) from sync_error
            committing.set_result(self._commit_once(synced=True))
        except BaseException as exc:
            committing.set_exception(exc)
        # After the answer: whoever waits for this blob need not wait for the next one's.
        self._store.make_spares()

    def _commit_once(self, *, synced: bool) -> BlobRef:
        if self._ref is not None:
            return self._ref
        self._check_open()
        try:
            ref = self._commit(synced)
        except OSError as exc:
            self._drop()
            raise local_failure("commit to the store", exc) from exc
        self._ref = ref
        return ref

    def _commit(self, synced: bool) -> BlobRef:
        self._file.flush()
        if self._store.fsync and not synced:
            os.fsync(self._file.fileno())
        self._file.close()
        ref = BlobRef(self._digest.hexdigest(), self._size)
        final = self._store.path_of(ref.sha256)
        if _freshen(final):
            self._staging_path.unlink()
        else:
            self._store.rename_into_place(self._staging_path, final)
        if self._store.fsync:
            # Also on the dedup path: the existing entry may come from a rename whose
            # directory sync never happened (a crash between the two steps).
            _fsync_dir(final.parent)
        return ref

    def discard(self) -> None:
        """Drop the staging file; harmless when repeated or after commit.

        A commit under way in the background is waited for: once it has begun, the blob
        is stored (or dropped by the commit's own failure), never half of either.
        """
        if self._verdict is not None and not self._verdict.done():
            self._verdict.set_result(False)
        if self._committing is not None:
            # The job still uses the descriptor until it has answered.
            with contextlib.suppress(StoreUnavailable, ValueError):
                self._committing.result()
        self._drop()

    def _drop(self) -> None:
        if self._ref is not None or self._discarded:
            return
        self._discarded = True
        self._file.close()
        self._staging_path.unlink(missing_ok=True)

    def _check_open(self) -> None:
        if self._discarded:
            raise ValueError("blob writer was discarded")
        if self._ref is not None:
            raise ValueError("blob writer was already committed")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.discard()
