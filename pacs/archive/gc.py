"""`pacs gc`: remove blobs that no instance references, and staging files left by crashes.

Safe beside a running `pacs serve`. A store makes its blob present first (writes it,
or finds the same bytes already there: deduplication) and commits the index row that
references it second, so a blob unreferenced when gc looks may be referenced a moment
later. The protocol that keeps such a blob:

1. The store: deduplicating onto an existing blob sets the blob's modification time
   to now (`os.utime`, one call that fails when the blob is gone, in which case the
   store renames its own copy into place, whose time is that of its last write). So a
   blob's mtime is never older than the last store that made it present. A store
   commits its index row within STALE_AGE of that moment (less than GRACE); one that
   takes longer has long outlived its peer's DIMSE timeout.
2. gc lists the store against the index (the merge-join `pacs verify` uses) and keeps
   blobs no instance references and not modified for GRACE.
3. For each batch of those it asks the index which are referenced now, and keeps those
   (this only spares the next steps blobs that are plainly in use).
4. For each blob left, it takes the blob away from its address into `.gc/` (a rename,
   atomic: after it no store can find or touch it), then reads its mtime m there, at
   time a. If a - m < GRACE it puts the blob back at once.
5. Once the batch's blobs are taken away, it asks the index again, at t, which of those
   it holds are referenced now: it puts those back and removes the rest.

Why no acknowledged instance loses its blob: take a store whose index row references
blob B and which acknowledged. If its row committed before t, step 5 saw it and put B
back. Otherwise it committed after t, so it made B present at s > t - STALE_AGE (step
1). If it made B present after gc's rename, it found no blob and renamed its own copy to
the address, which gc never takes away again (putting B back writes the same bytes over
it). If before, m >= s > t - STALE_AGE > a - GRACE, since a < t and STALE_AGE < GRACE:
step 4 put B back. This assumes the server's and gc's clocks and the filesystem's
timestamps agree to well within GRACE - STALE_AGE (one machine, or NTP). A retrieve of B
between gc's taking it away and its putting back does not find it and fails that one
transfer (B is then referenced only by a row committed after step 3).

On S3 taking away is a HEAD (for m), a copy and a delete, not atomic: a store that
deduplicates onto B between the HEAD and the delete has its object deleted while gc
judges the m from before. There step 5 and the store's own check, after its index row
committed, that its object is still there keep B (`pacs.store.s3_listing` argues it).

Staging files are a store's bytes on their way to an address: only those not written
for STALE_AGE (as `pacs verify` judges them) go, and never a server's unused spare
files. A collection that crashed between taking away and deciding leaves its blobs in
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
        unreferenced = await self._unreferenced(old)  # step 3
        if report.dry_run:
            report.blobs_removed += len(unreferenced)
            report.removed += unreferenced
            return
        held, young = await blocking(_take_away, self.sweeper, unreferenced)
        report.kept_young += young
        going = await self._unreferenced(held)  # step 5: after every take-away of the batch
        for address, size in await blocking(_settle, self.sweeper, held, set(going)):
            report.blobs_removed += 1
            report.bytes_removed += size
            report.removed.append(address)

    async def _unreferenced(self, addresses: list[str]) -> list[str]:
        """The addresses no instance references now; the others count as kept."""
        if not addresses:
            return []
        referenced = await self.catalogue.referenced(addresses)
        self.report.kept_referenced += len(referenced)
        return [address for address in addresses if address not in referenced]

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


def _take_away(sweeper: Sweeper, addresses: Sequence[str]) -> tuple[list[str], int]:
    """Take each blob away, and put it back at once when it proves young (step 4).

    Returns the addresses held and how many were young; a blob gone meanwhile is left out.
    """
    held: list[str] = []
    young = 0
    for address in addresses:
        if not sweeper.take_away(address):
            continue
        age = sweeper.age(address)
        if age is None:
            continue
        if age < GRACE:
            sweeper.put_back(address)
            young += 1
        else:
            held.append(address)
    return held, young


def _settle(sweeper: Sweeper, held: Sequence[str], going: set[str]) -> list[tuple[str, int]]:
    """Put back the held blobs referenced by now, then remove the rest (step 5).

    Returns (address, bytes removed) for each blob removed.
    """
    for address in held:
        if address not in going:
            sweeper.put_back(address)
    return [(address, sweeper.discard(address)) for address in held if address in going]


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
