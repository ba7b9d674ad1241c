"""`pacs import`: Part 10 files from disk into the archive, through C-STORE's own ingest.

Each file's data set is handed to `Ingest.ingest` as if it had arrived in a C-STORE with
the SOP Class, Instance and transfer syntax of its File Meta Information: the same
checks, duplicate policy, deduplication and durability. A file whose instance the index
already holds with the same bytes is skipped before ingest (one lookup per chunk of
files), so running an interrupted import again redoes only what was not stored.
"""

import asyncio
import hashlib
import io
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pacs.archive.disk_files import FileList
from pacs.archive.ingest import Arrival, Ingest
from pacs.dicom.part10 import FileMeta, file_meta_bytes, read_file_meta
from pacs.errors import InstanceConflict, InvalidInstance, StoreUnavailable
from pacs.index.records import AddKind

log = logging.getLogger(__name__)

# Files read (and looked up in the index) per hop to a worker thread, and the bytes
# read per hop beyond which no more files are (large files come a few at a time).
CHUNK = 64
CHUNK_BYTES = 64 << 20
# Ingests under way at once: enough for group commit to fill its batches and for the
# store's commit threads to overlap their fsyncs, as many C-STORE associations do; and
# the bytes they may hold in memory (a larger file goes alone).
CONCURRENT = 32
CONCURRENT_BYTES = 256 << 20

# Says why a SOP Class / transfer syntax pair is not stored by this archive; None if it is.
Admission = Callable[[str, str], str | None]


class Progress(Protocol):
    """Told how many files a run will look at, then as each is done (on the loop)."""

    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


class Fate(StrEnum):
    """What became of one file."""

    STORED = "stored"
    ALREADY_STORED = "already stored"  # skipped: the index holds these bytes already
    DUPLICATE = "duplicate"  # another file of the same instance; the duplicate policy decided
    NOT_DICOM = "not DICOM"
    REFUSED = "refused"


@dataclass(slots=True)
class ImportReport:
    """What an import did. Paths and reasons, no patient data."""

    files: int = 0
    dicomdirs: int = 0
    seconds: float = 0.0
    counts: dict[Fate, int] = field(default_factory=lambda: dict.fromkeys(Fate, 0))
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def rate(self) -> float:
        """Files stored per second of the whole run."""
        return self.counts[Fate.STORED] / self.seconds if self.seconds > 0 else 0.0

    def note(self, fate: Fate, path: str = "", reason: str = "") -> None:
        self.counts[fate] += 1
        if fate is Fate.REFUSED:
            self.refused.append((path, reason))


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A Part 10 file read into memory: its meta, its data set, and the address it will have."""

    path: Path
    meta: FileMeta
    data_set: bytes
    address: str


@dataclass(frozen=True, slots=True)
class _Unusable:
    path: Path
    fate: Fate
    reason: str


def _load(path: Path, admission: Admission) -> _Loaded | _Unusable:
    """Read one file; say why it cannot be ingested, or what its blob's address will be."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _Unusable(path, Fate.REFUSED, f"cannot be read: {exc.strerror or exc}")
    try:
        meta = read_file_meta(io.BytesIO(data))
    except ValueError as exc:
        if data[128:132] != b"DICM":
            return _Unusable(path, Fate.NOT_DICOM, "no DICM prefix")
        return _Unusable(path, Fate.REFUSED, str(exc))
    if (why := admission(meta.sop_class_uid, meta.transfer_syntax_uid)) is not None:
        return _Unusable(path, Fate.REFUSED, why)
    data_set = data[meta.offset :]
    # What ingest will store: the File Meta Information it writes, then the data set.
    head = file_meta_bytes(
        meta.sop_class_uid, meta.sop_instance_uid, meta.transfer_syntax_uid, meta.source_ae_title
    )
    address = hashlib.sha256(head + data_set).hexdigest()
    return _Loaded(path, meta, data_set, address)


def _load_chunk(
    paths: Sequence[Path], admission: Admission
) -> tuple[list[_Loaded | _Unusable], int]:
    """Load files from the start of `paths` until CHUNK_BYTES are held; return them and
    how many paths that took (at least one)."""
    loaded: list[_Loaded | _Unusable] = []
    held = 0
    for path in paths:
        if held >= CHUNK_BYTES:
            break
        item = _load(path, admission)
        loaded.append(item)
        held += len(item.data_set) if isinstance(item, _Loaded) else 0
    return loaded, len(loaded)


class _InFlight:
    """Ingests under way, bounded in number and in the bytes they hold."""

    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._count = 0
        self._bytes = 0

    def _room_for(self, size: int) -> bool:
        if self._count == 0:
            return True
        return self._count < CONCURRENT and self._bytes + size <= CONCURRENT_BYTES

    async def enter(self, size: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._room_for(size))
            self._count += 1
            self._bytes += size

    async def leave(self, size: int) -> None:
        async with self._changed:
            self._count -= 1
            self._bytes -= size
            self._changed.notify_all()


class Catalogue(Protocol):
    """Which instances the index holds (`pacs.index.presence.Presence`)."""

    async def addresses(self, uids: Collection[str]) -> dict[str, str]: ...


class _Silent:
    def start(self, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


async def _fragments(data_set: bytes) -> AsyncIterator[bytes]:
    """The data set as C-STORE's fragments would bring it: here, in one piece."""
    yield data_set


class FileImport:
    """One import run: reads files in a thread, skips what is stored, ingests the rest."""

    def __init__(
        self,
        ingest: Ingest,
        catalogue: Catalogue,
        admission: Admission,
        progress: Progress | None = None,
    ) -> None:
        self._ingest = ingest
        self._catalogue = catalogue
        self._admission = admission
        self._progress = progress or _Silent()
        self.report = ImportReport()
        self._in_flight = _InFlight()
        self._running: set[asyncio.Task[None]] = set()
        self._failure: StoreUnavailable | None = None

    async def run(self, found: FileList) -> ImportReport:
        """Import every file found; StoreUnavailable (the store or index cannot take
        writes) stops the run once the ingests under way have finished."""
        started = time.monotonic()
        self.report.files = len(found.files)
        self.report.dicomdirs = found.dicomdirs
        for missing in found.missing:
            self.report.note(Fate.REFUSED, missing.path, missing.reason)
        self._progress.start(len(found.files))
        try:
            done = 0
            while done < len(found.files) and self._failure is None:
                done += await self._chunk(found.files[done : done + CHUNK])
        finally:
            if self._running:
                await asyncio.wait(self._running)
        self.report.seconds = time.monotonic() - started
        self.report.refused.sort()  # ingests finish in any order
        if self._failure is not None:
            raise self._failure
        return self.report

    async def _chunk(self, paths: Sequence[Path]) -> int:
        """Import files from the start of `paths`; return how many were taken."""
        loaded, taken = await asyncio.to_thread(_load_chunk, paths, self._admission)
        uids = [item.meta.sop_instance_uid for item in loaded if isinstance(item, _Loaded)]
        stored = await self._catalogue.addresses(uids)
        for item in loaded:
            if isinstance(item, _Unusable):
                self._done(item.fate, item.path, item.reason)
            elif stored.get(item.meta.sop_instance_uid) == item.address:
                self._done(Fate.ALREADY_STORED)
            else:
                await self._in_flight.enter(len(item.data_set))
                task = asyncio.create_task(self._store(item))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        return taken

    async def _store(self, item: _Loaded) -> None:
        meta = item.meta
        arrival = Arrival(
            meta.sop_class_uid,
            meta.sop_instance_uid,
            meta.transfer_syntax_uid,
            meta.source_ae_title,
        )
        try:
            outcome = await self._ingest.ingest(arrival, _fragments(item.data_set))
        except (InvalidInstance, InstanceConflict) as exc:
            self._done(Fate.REFUSED, item.path, str(exc))
        except StoreUnavailable as exc:
            self._failure = self._failure or exc
            self._done(Fate.REFUSED, item.path, str(exc))
        except Exception as exc:
            # A bug rather than a bad file; the run goes on, the file is listed.
            log.exception("importing %s failed", item.path)
            self._done(Fate.REFUSED, item.path, f"unexpected error: {exc!r}")
        else:
            stored = outcome.kind is AddKind.STORED
            self._done(Fate.STORED if stored else Fate.DUPLICATE)
        finally:
            await self._in_flight.leave(len(item.data_set))

    def _done(self, fate: Fate, path: Path | None = None, reason: str = "") -> None:
        self.report.note(fate, str(path or ""), reason)
        self._progress.advance(1)
