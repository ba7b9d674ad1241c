"""QueryService over a real index: pages of answers, cut at `max_results`, no network."""

import hashlib
import logging
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from pacs.archive.query import QueryOptions, QueryService
from pacs.archive.records import record_for
from pacs.dicom.header import split_by_level
from pacs.dicom.matching import InformationModel, Query, parse_identifier
from pacs.index.find import Finder
from pacs.index.reads import Reads
from pacs.index.repository import Index
from pacs.store.blobstore import BlobRef
from tests.conftest import make_instance

STUDIES = 5
STUDY_UID = "0020000D"


class WatchedFinder:
    """The real Finder, counting the pages read from the database and telling whether the
    query was closed."""

    def __init__(self, finder: Finder) -> None:
        self._finder = finder
        self.pages_read = 0
        self.closed = False

    async def find_pages(
        self, query: Query, *, fold_pn: bool, page_size: int = 100
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        try:
            async for page in self._finder.find_pages(query, fold_pn=fold_pn, page_size=page_size):
                self.pages_read += 1
                yield page
        finally:
            self.closed = True


@pytest.fixture
async def finder(index: Index, reads: Reads) -> WatchedFinder:
    """An index holding STUDIES studies of patient MANY, one instance each."""
    records = []
    for _ in range(STUDIES):
        ds = make_instance(PatientID="MANY")
        digest = hashlib.sha256(ds.SOPInstanceUID.encode()).hexdigest()
        records.append(
            record_for(split_by_level(ds), ExplicitVRLittleEndian, BlobRef(digest, 1), "MOD")
        )
    await index.add_instances(records, "keep")
    return WatchedFinder(Finder(reads))


def studies_of_many() -> Query:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = "MANY"
    ds.StudyInstanceUID = ""
    return parse_identifier(ds, InformationModel.STUDY_ROOT)


async def pages(service: QueryService) -> list[list[dict[str, Any]]]:
    return [page async for page in service.find(studies_of_many())]


def cuts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "pacs.archive.query" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize(
    ("max_results", "sizes", "pages_read"),
    [
        (3, [2, 1], 2),  # cut inside a page
        (4, [2, 2], 3),  # cut at a page's end: the next page tells that matches went on
        (1, [1], 1),
    ],
)
async def test_answers_stop_at_max_results_and_the_cut_is_logged(
    finder: WatchedFinder,
    caplog: pytest.LogCaptureFixture,
    max_results: int,
    sizes: list[int],
    pages_read: int,
) -> None:
    service = QueryService(finder, QueryOptions(max_results=max_results, page_size=2))

    found = await pages(service)

    assert [len(page) for page in found] == sizes
    uids = [match[STUDY_UID]["Value"][0] for page in found for match in page]
    assert len(set(uids)) == max_results
    assert finder.pages_read == pages_read
    assert finder.closed
    assert cuts(caplog) == [f"C-FIND STUDY: cut at max_results={max_results}"]


@pytest.mark.parametrize("max_results", [0, STUDIES, STUDIES + 1])
async def test_without_a_limit_reached_every_match_is_answered_and_nothing_is_logged(
    finder: WatchedFinder, caplog: pytest.LogCaptureFixture, max_results: int
) -> None:
    service = QueryService(finder, QueryOptions(max_results=max_results, page_size=2))

    found = await pages(service)

    assert [len(page) for page in found] == [2, 2, 1]
    assert finder.closed
    assert cuts(caplog) == []


async def test_a_caller_that_stops_early_closes_the_database_query(finder: WatchedFinder) -> None:
    service = QueryService(finder, QueryOptions(page_size=2))
    answers = service.find(studies_of_many())

    first = await anext(answers)
    await answers.aclose()

    assert len(first) == 2
    assert finder.pages_read == 1
    assert finder.closed
