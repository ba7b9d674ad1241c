"""The verify use case on in-memory index and store sources: the merge-join and the re-check."""

from collections.abc import AsyncIterator, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from pacs.archive.verify import Finding, FindingKind, Match, merge, verify
from pacs.errors import SchemaError
from pacs.index.inventory import IndexedBlob, Totals
from pacs.store.listing import Rehash, StagingFile

A, B, C, D = (letter * 64 for letter in "abcd")
T = TypeVar("T")


async def _iterate(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


async def _merged(rows: list[IndexedBlob], addresses: list[str]) -> list[Match]:
    return [match async for match in merge(_iterate(rows), _iterate(addresses))]


def _row(sha256: str, uid: str) -> IndexedBlob:
    return IndexedBlob(sha256, 10, uid)


async def test_merge_pairs_each_address_with_the_instances_that_reference_it() -> None:
    rows = [_row(A, "1.1"), _row(A, "1.2"), _row(C, "1.3")]

    matches = await _merged(rows, [A, B, D])

    assert matches == [
        Match(A, (rows[0], rows[1]), stored=True),
        Match(B, (), stored=True),
        Match(C, (rows[2],), stored=False),
        Match(D, (), stored=True),
    ]


async def test_merge_of_an_empty_side_reports_every_address_of_the_other() -> None:
    assert await _merged([], []) == []
    assert await _merged([], [A]) == [Match(A, (), stored=True)]
    assert await _merged([_row(B, "1")], []) == [Match(B, (_row(B, "1"),), stored=False)]


async def test_merge_refuses_an_index_that_is_not_in_address_order() -> None:
    with pytest.raises(SchemaError, match="out of order"):
        await _merged([_row(B, "1"), _row(A, "2")], [A, B])


class Catalogue:
    """An index held in memory; `late` are addresses indexed after the pages were read."""

    def __init__(self, rows: list[IndexedBlob], late: Collection[str] = ()) -> None:
        self.rows = sorted(rows, key=lambda row: (row.sha256, row.sop_instance_uid))
        self.late = set(late)

    async def totals(self) -> Totals:
        return Totals(len(self.rows), sum(row.size for row in self.rows))

    async def pages(self) -> AsyncIterator[list[IndexedBlob]]:
        for start in range(0, len(self.rows), 2):
            yield self.rows[start : start + 2]

    async def referenced(self, addresses: Collection[str]) -> set[str]:
        known = {row.sha256 for row in self.rows} | self.late
        return known & set(addresses)


class Holdings:
    """A store held in memory: address -> what its bytes hash to now; `late` appear at the end."""

    def __init__(
        self, blobs: dict[str, str], late: Collection[str] = (), young: Collection[str] = ()
    ) -> None:
        self.blobs = blobs
        self.late = set(late)
        self.young = set(young)
        self.rehashed: list[str] = []

    def prefixes(self) -> list[str]:
        return sorted({address[:2] for address in self.blobs})

    def addresses(self, prefix: str) -> list[str]:
        return sorted(a for a in self.blobs if a.startswith(prefix))

    def staging(self) -> list[StagingFile]:
        return [
            StagingFile("old.part", 3, 3600.0),
            StagingFile("new.part", 3, 5.0),
            StagingFile("made-ahead.spare", 0, 3600.0),  # a spare never used: no leftover
        ]

    def exists(self, sha256: str) -> bool:
        return sha256 in self.blobs or sha256 in self.late

    def rehash(self, sha256: str) -> Rehash:
        self.rehashed.append(sha256)
        return Rehash(self.blobs[sha256], 10)

    def age(self, sha256: str) -> float | None:
        if not self.exists(sha256):
            return None
        return 5.0 if sha256 in self.young else 3600.0


@pytest.fixture
def hashing() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as pool:
        yield pool


def _kinds(findings: Iterable[Finding]) -> set[tuple[FindingKind, str, str | None]]:
    return {(f.kind, f.address, f.sop_instance_uid) for f in findings}


async def test_what_a_concurrent_store_explains_is_dropped_and_the_rest_reported(
    hashing: ThreadPoolExecutor,
) -> None:
    # A is corrupt; B is indexed but gone; C was written, then indexed after its address
    # was passed; D is an orphan; E is indexed, and its blob was committed after the listing;
    # F was written a moment ago and its index row is not committed yet.
    e, f = "e" * 64, "f" * 64
    catalogue = Catalogue([_row(A, "1.1"), _row(B, "1.2"), _row(e, "1.5")], late=[C])
    holdings = Holdings({A: D, C: C, D: D, f: f}, late=[e], young=[f])

    report = await verify(catalogue, holdings, hashing, 1)

    assert _kinds(report.findings) == {
        (FindingKind.CORRUPT, A, "1.1"),
        (FindingKind.MISSING, B, "1.2"),
        (FindingKind.UNREFERENCED, D, None),
        (FindingKind.STALE_STAGING, "old.part", None),
    }
    assert (report.instances_indexed, report.blobs_stored, report.blobs_rehashed) == (3, 4, 1)
    assert (report.staging_in_progress, report.blobs_being_indexed) == (1, 1)
    assert not report.ok


async def test_a_zero_sample_rehashes_nothing_and_a_full_one_everything_referenced(
    hashing: ThreadPoolExecutor,
) -> None:
    catalogue = Catalogue([_row(A, "1.1"), _row(B, "1.2"), _row(C, "1.3")])
    none = Holdings({A: A, B: B, C: C, D: D})
    every = Holdings({A: A, B: B, C: C, D: D})

    skipped = await verify(catalogue, none, hashing, 1, sample_percent=0)
    checked = await verify(catalogue, every, hashing, 1, sample_percent=100)

    assert none.rehashed == []
    assert sorted(every.rehashed) == [A, B, C]
    assert (skipped.blobs_rehashed, checked.blobs_rehashed) == (0, 3)
    assert checked.bytes_rehashed == 30
