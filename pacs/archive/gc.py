"""`pacs gc`: remove blobs that no instance references, and staging files left by crashes.

Safe beside a running `pacs serve`. A store makes its blob present first (writes it,
or finds the same bytes already there: deduplication) and commits the index row that
references it second, so a blob unreferenced when gc looks may be referenced a moment
later. The protocol that keeps such a blob:

1. The store: deduplicating onto an existing blob sets the blob's modification time
   to now (`os.utime`, one call that fails when the blob is gone, in which case the
   store renames its own copy into place, whose time is that of its last write). So a
   blob's mtime is never older than the last store that made it present. A store
   commits its index row within INGEST_BOUND of that moment; one that takes longer
   has long outlived its peer's DIMSE timeout.
2. gc lists the store against the index (the merge-join `pacs verify` uses) and keeps
   blobs no instance references and not modified for GRACE.
3. For each batch of those it notes the time t, then asks the index again which are
   referenced now, and keeps those.
4. For each blob left, it renames the blob from its address into `.gc/` (atomic: after
   it no store can find or touch it), then reads its mtime m there. It removes the blob
   only if m is older than GRACE and less than GRACE - INGEST_BOUND has passed since t;
   otherwise it puts the blob back.

Why no acknowledged instance loses its blob: take a store whose index row references
blob B and which acknowledged. If its row committed before t, step 3 saw it. Otherwise
it committed after t, and made B present at s, after t - INGEST_BOUND (step 1). If it
made B present after gc's rename, it found no blob and renamed its own copy to the
address, which gc never touches. If before, m >= s > t - INGEST_BOUND, while removing
needs m < now - GRACE < t + (GRACE - INGEST_BOUND) - GRACE = t - INGEST_BOUND: gc puts
B back. This assumes the server's and gc's clocks and the filesystem's timestamps agree
to well within INGEST_BOUND (one machine, or NTP). A retrieve of B in the instant
between gc's rename and its putting back does not find it and fails that one transfer.

Staging files are a store's bytes on their way to an address: only those not written
for STALE_AGE (as `pacs verify` judges them) go, and never a server's unused spare
files. A collection that crashed between renaming and deciding leaves its blobs in
`.gc/`; the next one puts them back first and judges them again.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pacs.archive.verify import (
    STALE_AGE,
    Catalogue,
    Holdings,
    Progress,
    blocking,
    index_rows,
    merge,
    stored_addresses,
)
from pacs.store.listing import StagingFile

GRACE = 3600.0  # seconds since a blob's last write or deduplication before gc may remove it
INGEST_BOUND = STALE_AGE  # a store's index row commits within this of its blob being present
BATCH = 500  # unreferenced addresses re-checked against the index in one query


class Sweeper(Protocol):
    """The store's removals (`pacs.store.gc.BlobSweeper`); every method blocks."""

    def leftovers(self) -> list[str]: ...

    def take_away(self, sha256: str) -> bool: ...

    def age(self, sha256: str) -> float | None: ...

    def put_back(self, sha256: str) -> None: ...

    def discard(self, sha256: str) -> int: ...

    def remove_staging(self, name: str, older_than: float) -> int | None: ...


@dataclass(slots=True)
class GcReport:
    """What one collection found and did. No patient data: counts only."""

    dry_run: bool
    instances_indexed: int = 0
    blobs_stored: int = 0
    unreferenced: int = 0  # stored, and no instance referenced them when listed
    blobs_removed: int = 0  # with --dry-run: that would be removed
    bytes_removed: int = 0  # not measured with --dry-run
    kept_young: int = 0  # unreferenced, but written or deduplicated onto within GRACE
    kept_referenced: int = 0  # referenced by the time they were looked at again
    staging_removed: int = 0
    staging_bytes_removed: int = 0
    staging_in_progress: int = 0
    leftovers_put_back: int = 0
    seconds: float = 0.0
    removed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The report as JSON values (`pacs gc --json`)."""
        counts = {
            name: getattr(self, name)
            for name in (
                "instances_indexed",
                "blobs_stored",
                "unreferenced",
                "blobs_removed",
                "bytes_removed",
                "kept_young",
                "kept_referenced",
                "staging_removed",
                "staging_bytes_removed",
                "staging_in_progress",
                "leftovers_put_back",
            )
        }
        counts["seconds"] = round(self.seconds, 3)
        return {"dry_run": self.dry_run, "counts": counts, "removed": list(self.removed)}


class _Collection:
    def __init__(
        self, catalogue: Catalogue, holdings: Holdings, sweeper: Sweeper, report: GcReport
    ):
        self.catalogue = catalogue
        self.holdings = holdings
        self.sweeper = sweeper
        self.report = report

    async def judge(self, candidates: list[str]) -> None:
        """Re-check a batch of unreferenced addresses and remove those that may go."""
        report = self.report
        old = await blocking(_older, self.holdings, candidates, GRACE)
        report.kept_young += len(candidates) - len(old)
        if not old:
            return
        asked_at = time.monotonic()  # before the query: rows it misses committed after
        referenced = await self.catalogue.referenced(old)
        report.kept_referenced += len(referenced)
        unreferenced = [address for address in old if address not in referenced]
        if report.dry_run:
            report.blobs_removed += len(unreferenced)
            report.removed += unreferenced
            return
        for address, size in await blocking(_sweep, self.sweeper, unreferenced, asked_at):
            if size is None:
                report.kept_young += 1
            else:
                report.blobs_removed += 1
                report.bytes_removed += size
                report.removed.append(address)

    async def staging(self, files: Sequence[StagingFile]) -> None:
        """Remove staging files not written for STALE_AGE; count the younger ones."""
        report = self.report
        for staged in files:
            if staged.unused_spare:
                continue
            if staged.age < STALE_AGE:
                report.staging_in_progress += 1
                continue
            if report.dry_run:
                size: int | None = staged.size
            else:
                size = await blocking(self.sweeper.remove_staging, staged.name, STALE_AGE)
            if size is None:
                report.staging_in_progress += 1
            else:
                report.staging_removed += 1
                report.staging_bytes_removed += size


def _older(holdings: Holdings, addresses: Sequence[str], limit: float) -> list[str]:
    """The addresses whose blob is stored and was last written `limit` seconds ago or more."""
    return [a for a in addresses if (age := holdings.age(a)) is not None and age >= limit]


def _sweep(
    sweeper: Sweeper, addresses: Sequence[str], asked_at: float
) -> list[tuple[str, int | None]]:
    """Take each blob away and remove it, or put it back when it proves young (step 4).

    Returns (address, bytes removed or None when kept); a blob gone meanwhile is left out.
    """
    outcomes: list[tuple[str, int | None]] = []
    for address in addresses:
        if time.monotonic() - asked_at >= GRACE - INGEST_BOUND:
            break  # the index's answer is too old to rely on; the next gc sees the rest
        if not sweeper.take_away(address):
            continue
        age = sweeper.age(address)
        if age is None:
            continue
        if age < GRACE or time.monotonic() - asked_at >= GRACE - INGEST_BOUND:
            sweeper.put_back(address)
            outcomes.append((address, None))
        else:
            outcomes.append((address, sweeper.discard(address)))
    return outcomes


async def collect(
    catalogue: Catalogue,
    holdings: Holdings,
    sweeper: Sweeper,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> GcReport:
    """Remove unreferenced blobs older than GRACE and staging files older than STALE_AGE.

    With `dry_run` nothing is changed: the report counts what would be removed.
    The caller holds the store's collection lock.
    """
    started = time.monotonic()
    report = GcReport(dry_run)
    run = _Collection(catalogue, holdings, sweeper, report)
    leftovers = await blocking(sweeper.leftovers)
    report.leftovers_put_back = len(leftovers)
    if not dry_run:
        for address in leftovers:
            await blocking(sweeper.put_back, address)
    await run.staging(await blocking(holdings.staging))
    candidates: list[str] = []
    async for match in merge(index_rows(catalogue), stored_addresses(holdings, progress)):
        report.instances_indexed += len(match.instances)
        report.blobs_stored += match.stored
        if match.stored and not match.instances:
            report.unreferenced += 1
            candidates.append(match.address)
            if len(candidates) >= BATCH:
                await run.judge(candidates)
                candidates = []
    if candidates:
        await run.judge(candidates)
    report.seconds = time.monotonic() - started
    return report
