"""`pacs reindex`: rebuild the index from the store's files alone.

Each blob's header is read with the code C-STORE uses (`dicom.header`, `archive.records`)
and its record written through the index's own batch write (`Index.add_instances`), so a
rebuilt index holds what the live one would. Blobs go in the order they were written
(oldest first, by file time): parents keep the attributes of their first instance, as
they did when stored, and a SOP Instance UID stored more than once (a replaced duplicate)
ends up as the duplicate policy left it: the newest under "replace", else the oldest.
"""

import asyncio
import io
import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol

from pacs.archive.group_commit import InstanceIndex
from pacs.archive.records import record_for
from pacs.dicom.header import read_header, split_by_level
from pacs.dicom.part10 import read_file_meta
from pacs.errors import InvalidInstance, StoreUnavailable
from pacs.index.records import AddKind, AddOutcome, DuplicatePolicy, InstanceRecord
from pacs.store.blobstore import BlobRef, FileBlobStore
from pacs.store.layout import BlobPaths
from pacs.store.survey import address_of, prefixes, survey

# Blobs per index transaction (and per hop to a parsing worker): large enough that a
# commit and a hop are cheap per instance, small enough to keep memory flat.
BATCH = 256
# Batches parsed ahead of the index writes, per parsing worker.
AHEAD_PER_WORKER = 2
# A file up to this size is read whole and parsed from memory: fewer system calls.
READ_WHOLE = 1 << 20


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A stored blob whose header cannot be read: it is left out of the index."""

    address: str
    reason: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A SOP Instance UID found in more than one blob: which one the index points to."""

    sop_instance_uid: str
    kept: str
    dropped: str


@dataclass(slots=True)
class ReindexReport:
    """What a rebuild did. No patient data: addresses, UIDs and counts only."""

    blobs: int = 0
    indexed: int = 0
    seconds: float = 0.0
    duplicates: list[Duplicate] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (UID, the database's reason)
    patient_conflicts: int = 0

    @property
    def rate(self) -> float:
        """Blobs read per second of the whole run."""
        return self.blobs / self.seconds if self.seconds > 0 else 0.0

    @property
    def complete(self) -> bool:
        """Every blob's header was read and its instance indexed (duplicates aside)."""
        return not self.unreadable and not self.refused


class Progress(Protocol):
    """Told how many blobs a run will read, then as each batch is indexed (on the loop)."""

    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


class _Silent:
    def start(self, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


def rebuild_policy(configured: DuplicatePolicy) -> DuplicatePolicy:
    """The policy that, applied oldest blob first, leaves what `configured` left live.

    "keep" and "reject" both left the first stored instance indexed (a rejected
    duplicate's blob is stored but no instance references it).
    """
    if configured is DuplicatePolicy.REPLACE:
        return DuplicatePolicy.REPLACE
    return DuplicatePolicy.KEEP


async def stored_blobs(store: FileBlobStore) -> list[bytes]:
    """A key for every blob in the store (`store.survey`), oldest first, ties by address."""
    try:
        found = []
        for prefix in await asyncio.to_thread(prefixes, store):
            found += await asyncio.to_thread(survey, store, prefix)
    except OSError as exc:
        raise StoreUnavailable(f"cannot read the store: {exc.strerror or exc}") from exc
    found.sort()
    return found


def parse_blob(paths: BlobPaths, address: str) -> InstanceRecord | Unreadable:
    """The index record of a stored blob, read as ingest reads a received instance. Blocking."""
    try:
        with open(paths.of(address), "rb") as fp:
            size = os.fstat(fp.fileno()).st_size
            source = io.BytesIO(fp.read()) if size <= READ_WHOLE else fp
            meta = read_file_meta(source)
            dataset = read_header(source, meta.transfer_syntax_uid)
        levels = split_by_level(dataset)
    except FileNotFoundError:
        return Unreadable(address, "removed while reindex ran")
    except ValueError as exc:
        return Unreadable(address, f"not a Part 10 file: {exc}")
    except (InvalidInstance, OSError) as exc:
        return Unreadable(address, str(exc))
    ref = BlobRef(address, size)
    return record_for(levels, meta.transfer_syntax_uid, ref, meta.source_ae_title)


def parse_blobs(paths: BlobPaths, keys: Sequence[bytes]) -> list[InstanceRecord | Unreadable]:
    """parse_blob for each of a batch of blob keys: the unit of work sent to a worker."""
    return [parse_blob(paths, address_of(key)) for key in keys]


class _Run:
    """One rebuild's tally."""

    def __init__(self) -> None:
        self.report = ReindexReport()

    def note(self, records: Sequence[InstanceRecord], outcomes: Sequence[AddOutcome]) -> None:
        for record, outcome in zip(records, outcomes, strict=True):
            uid, address = outcome.sop_instance_uid, record.blob.sha256
            if outcome.conflict is not None:
                self.report.patient_conflicts += 1
            if outcome.kind is AddKind.STORED:
                self.report.indexed += 1
            elif outcome.kind is AddKind.REPLACED and outcome.previous_sha256 is not None:
                self.report.duplicates.append(Duplicate(uid, address, outcome.previous_sha256))
            elif outcome.kind is AddKind.KEPT_EXISTING and outcome.previous_sha256 is not None:
                self.report.duplicates.append(Duplicate(uid, outcome.previous_sha256, address))
            elif outcome.kind is AddKind.FAILED:
                self.report.refused.append((uid, outcome.reason or "refused"))


async def reindex(
    paths: BlobPaths,
    blobs: Sequence[bytes],
    index: InstanceIndex,
    policy: DuplicatePolicy,
    parsing: Executor,
    *,
    workers: int,
    progress: Progress | None = None,
) -> ReindexReport:
    """Index every blob of `blobs` (keys of the store whose blobs are at `paths`), in their
    order, through `index`'s batch write.

    Headers are parsed on `parsing` (`workers` wide, 0 for one thread), some batches
    ahead of the writes; the writes go one batch at a time in order, so which duplicate
    wins is decided by the order of `blobs` alone.
    """
    started = time.monotonic()
    progress = progress or _Silent()
    progress.start(len(blobs))
    run = _Run()
    loop = asyncio.get_running_loop()
    batches = deque(blobs[start : start + BATCH] for start in range(0, len(blobs), BATCH))
    parsed: deque[asyncio.Future[list[InstanceRecord | Unreadable]]] = deque()

    def parse_next() -> None:
        if batches:
            parsed.append(loop.run_in_executor(parsing, parse_blobs, paths, batches.popleft()))

    for _ in range(max(1, workers) * AHEAD_PER_WORKER):
        parse_next()
    try:
        while parsed:
            results = await parsed.popleft()
            parse_next()
            records = [r for r in results if isinstance(r, InstanceRecord)]
            run.report.unreadable += [r for r in results if isinstance(r, Unreadable)]
            run.note(records, await index.add_instances(records, policy))
            run.report.blobs += len(results)
            progress.advance(len(results))
    finally:
        for future in parsed:
            future.cancel()
    run.report.seconds = time.monotonic() - started
    return run.report


__all__ = [
    "Duplicate",
    "Progress",
    "ReindexReport",
    "Unreadable",
    "parse_blobs",
    "rebuild_policy",
    "reindex",
    "stored_blobs",
]
