"""`pacs verify`: check the index and the store against each other, and blobs against their names.

Both sides are read in address order and merged, so memory holds a page of index rows,
one `ab/` directory of names and a bounded number of re-hashes in flight, whatever the
archive's size. `pacs serve` may be storing meanwhile: what looks wrong is looked at
again at the end, and dropped when a concurrent store explains it.
"""

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Collection
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pacs.archive.verify_report import Finding, FindingKind, VerifyReport
from pacs.errors import SchemaError, StoreUnavailable
from pacs.index.inventory import IndexedBlob, Totals
from pacs.store.listing import Rehash, StagingFile

__all__ = [
    "Finding",
    "FindingKind",
    "Match",
    "Progress",
    "VerifyReport",
    "blocking",
    "index_rows",
    "merge",
    "stored_addresses",
    "verify",
]

T = TypeVar("T")

# A staging file, or a stored blob no instance references, this old is no store in
# progress (one takes seconds) but a crash's leftover.
STALE_AGE = 600.0  # seconds
# Re-hashes queued per hashing thread: enough that no thread waits for the next file.
IN_FLIGHT_PER_THREAD = 2


class Catalogue(Protocol):
    """The index side (`pacs.index.inventory.Inventory`)."""

    async def totals(self) -> Totals: ...

    def pages(self) -> AsyncIterator[list[IndexedBlob]]: ...

    async def referenced(self, addresses: Collection[str]) -> set[str]: ...


class Holdings(Protocol):
    """The store side (`pacs.store.listing.StoreListing`); every method blocks."""

    def prefixes(self) -> list[str]: ...

    def addresses(self, prefix: str) -> list[str]: ...

    def staging(self) -> list[StagingFile]: ...

    def exists(self, sha256: str) -> bool: ...

    def rehash(self, sha256: str) -> Rehash: ...

    def age(self, sha256: str) -> float | None: ...


class Progress(Protocol):
    """Told how many bytes a run will re-hash, then as each blob is done (on the loop)."""

    def start(self, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...


class _Silent:
    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Match:
    """An address seen on either side: the instances referencing it, and whether it is stored."""

    address: str
    instances: tuple[IndexedBlob, ...]
    stored: bool


async def merge(
    indexed: AsyncIterator[IndexedBlob], stored: AsyncIterator[str]
) -> AsyncIterator[Match]:
    """Join index rows (sorted by address) with stored addresses (sorted, unique), in order.

    SchemaError when the index's order is not the store's (a database collation that
    does not sort hex digits like bytes): the join would report nonsense.
    """
    row = await anext(indexed, None)
    address = await anext(stored, None)
    while row is not None or address is not None:
        if row is not None and (address is None or row.sha256 <= address):
            group = [row]
            while (row := await anext(indexed, None)) is not None and row.sha256 == group[0].sha256:
                group.append(row)
            if row is not None and row.sha256 < group[0].sha256:
                raise SchemaError(
                    "the index returns blob addresses out of order; "
                    "its database must collate them as plain text (e.g. C or C.UTF-8)"
                )
            here = group[0].sha256 == address
            yield Match(group[0].sha256, tuple(group), here)
            if here:
                address = await anext(stored, None)
        else:
            assert address is not None
            yield Match(address, (), True)
            address = await anext(stored, None)


async def index_rows(catalogue: Catalogue) -> AsyncIterator[IndexedBlob]:
    """Every instance's file as the index records it, in address order."""
    async for page in catalogue.pages():
        for row in page:
            yield row


async def stored_addresses(
    holdings: Holdings, progress: "Progress | None" = None
) -> AsyncIterator[str]:
    """Every stored address in order; `progress` counts the `ab/` directories listed."""
    prefixes = await blocking(holdings.prefixes)
    if progress is not None:
        progress.start(len(prefixes))
    for prefix in prefixes:
        for address in await blocking(holdings.addresses, prefix):
            yield address
        if progress is not None:
            progress.advance(1)


def _stored(holdings: Holdings, addresses: Collection[str]) -> set[str]:
    return {address for address in addresses if holdings.exists(address)}


def _younger(holdings: Holdings, addresses: Collection[str], limit: float) -> set[str]:
    """The addresses whose blob is gone or was written less than `limit` seconds ago."""
    young = set()
    for address in addresses:
        age = holdings.age(address)
        if age is None or age < limit:
            young.add(address)
    return young


async def blocking(function: Callable[..., T], *args: object) -> T:
    """Run a blocking store call in a thread; an OS error means the store cannot be read."""
    try:
        return await asyncio.to_thread(function, *args)
    except OSError as exc:
        raise StoreUnavailable(f"cannot read the store: {exc.strerror or exc}") from exc


class _Run:
    """One verification: counts and findings so far, and the re-hashes in flight."""

    def __init__(self, holdings: Holdings, hashing: Executor, threads: int, progress: Progress):
        self.holdings = holdings
        self.hashing = hashing
        self.progress = progress
        self.limit = max(1, threads) * IN_FLIGHT_PER_THREAD
        self.pending: dict[asyncio.Future[Rehash], Match] = {}
        self.findings: list[Finding] = []
        self.instances = self.blobs = self.rehashed = self.bytes = 0

    def see(self, match: Match) -> None:
        """Count a merged address; note it when it is missing or unreferenced."""
        self.instances += len(match.instances)
        self.blobs += match.stored
        if not match.stored:
            for row in match.instances:
                self.findings.append(
                    Finding(FindingKind.MISSING, row.sha256, row.sop_instance_uid, "no blob")
                )
        elif not match.instances:
            self.findings.append(
                Finding(FindingKind.UNREFERENCED, match.address, None, "no instance references it")
            )

    async def rehash(self, match: Match) -> None:
        """Start re-hashing a stored blob, first waiting while too many are in flight."""
        while len(self.pending) >= self.limit:
            await self._collect(asyncio.FIRST_COMPLETED)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.hashing, self.holdings.rehash, match.address)
        self.pending[future] = match

    async def finish(self) -> None:
        """Wait for every re-hash in flight."""
        while self.pending:
            await self._collect(asyncio.ALL_COMPLETED)

    async def _collect(self, when: str) -> None:
        done, _ = await asyncio.wait(self.pending, return_when=when)
        for future in done:
            match = self.pending.pop(future)
            try:
                outcome = future.result()
            except OSError as exc:
                outcome = Rehash(None, 0, exc.strerror or str(exc))
            self._judge(match, outcome)

    def _judge(self, match: Match, outcome: Rehash) -> None:
        self.rehashed += 1
        self.bytes += outcome.size
        self.progress.advance(outcome.size)
        if outcome.sha256 == match.address:
            return
        if outcome.error is not None:
            kind, detail = FindingKind.CORRUPT, f"cannot be read: {outcome.error}"
        elif outcome.sha256 is None:
            kind, detail = FindingKind.MISSING, "no blob (removed while verify ran)"
        else:
            kind, detail = FindingKind.CORRUPT, f"its {outcome.size} bytes hash to {outcome.sha256}"
        for row in match.instances:
            self.findings.append(Finding(kind, match.address, row.sop_instance_uid, detail))

    def note_staging(self, files: list[StagingFile]) -> int:
        """Note staging files old enough to be leftovers; return how many are younger."""
        in_progress = 0
        for staged in files:
            if staged.unused_spare:
                continue
            if staged.age < STALE_AGE:
                in_progress += 1
                continue
            minutes = staged.age / 60
            detail = f"staging file of {staged.size} bytes, last written {minutes:.0f} min ago"
            self.findings.append(Finding(FindingKind.STALE_STAGING, staged.name, None, detail))
        return in_progress


async def verify(
    catalogue: Catalogue,
    holdings: Holdings,
    hashing: Executor,
    threads: int,
    *,
    sample_percent: float = 100.0,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check the archive: every indexed blob stored, every stored blob indexed, and a
    `sample_percent` share of the stored blobs (each drawn by chance) re-hashed to their
    address on `hashing` (`threads` threads); staging files older than STALE_AGE.
    """
    started = time.monotonic()
    progress = progress or _Silent()
    run = _Run(holdings, hashing, threads, progress)
    totals = await catalogue.totals()
    progress.start(round(totals.bytes * sample_percent / 100))
    staging = run.note_staging(await blocking(holdings.staging))
    try:
        async for match in merge(index_rows(catalogue), stored_addresses(holdings)):
            run.see(match)
            if match.stored and match.instances and _drawn(sample_percent):
                await run.rehash(match)
    finally:
        await run.finish()
    findings, unindexed = await _recheck(catalogue, holdings, run.findings)
    return VerifyReport(
        sample_percent=sample_percent,
        instances_indexed=run.instances,
        blobs_stored=run.blobs,
        blobs_rehashed=run.rehashed,
        bytes_rehashed=run.bytes,
        staging_in_progress=staging,
        blobs_being_indexed=unindexed,
        seconds=time.monotonic() - started,
        findings=tuple(findings),
    )


def _drawn(sample_percent: float) -> bool:
    return sample_percent >= 100 or random.random() * 100 < sample_percent


async def _recheck(
    catalogue: Catalogue, holdings: Holdings, findings: list[Finding]
) -> tuple[list[Finding], int]:
    """Drop what stores made while verify ran explain; return the rest, and how many
    unreferenced blobs are young enough to be stores whose index write is under way.

    A store writes its blob, then its index row: a blob can be listed before its row
    commits, and a row read after its blob's directory was listed. Replacing an
    instance points its row at another blob.
    """
    unreferenced = {f.address for f in findings if f.kind is FindingKind.UNREFERENCED}
    missing = {f.address for f in findings if f.kind is FindingKind.MISSING}
    now_referenced = await catalogue.referenced(unreferenced | missing)
    now_stored = await blocking(_stored, holdings, missing)
    # Gone since (collected), or young enough to be a store whose index write is under way.
    young = await blocking(_younger, holdings, unreferenced - now_referenced, STALE_AGE)

    def still_wrong(finding: Finding) -> bool:
        if finding.kind is FindingKind.UNREFERENCED:
            return finding.address not in now_referenced and finding.address not in young
        if finding.kind is FindingKind.MISSING:
            return finding.address in now_referenced and finding.address not in now_stored
        return True

    return [f for f in findings if still_wrong(f)], len(young)
