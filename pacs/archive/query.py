"""Query: answer a C-FIND Query from the index, page by page, never from the files."""

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from pacs.dicom.matching import Query
from pacs.dicom.responses import response_json

log = logging.getLogger(__name__)


class MatchSource(Protocol):
    def find_pages(
        self, query: Query, *, fold_pn: bool, page_size: int = 100
    ) -> AsyncIterator[list[dict[str, Any]]]: ...


@dataclass(frozen=True, slots=True)
class QueryOptions:
    fold_pn: bool = True
    max_results: int = 0  # 0: no limit
    page_size: int = 100
    retrieve_ae_title: str = "PACS"


class QueryService:
    """Streams response identifiers for a query: one list per page of matches."""

    def __init__(self, source: MatchSource, options: QueryOptions) -> None:
        self._source = source
        self._options = options

    async def find(self, query: Query) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Yield pages of response identifiers (DICOM JSON keyed by tag), stopping at
        `max_results` when one is set."""
        options = self._options
        sent = 0
        pages = self._source.find_pages(query, fold_pn=options.fold_pn, page_size=options.page_size)
        try:
            async for page in pages:
                answers = [response_json(query, match, options.retrieve_ae_title) for match in page]
                if options.max_results and sent + len(answers) >= options.max_results:
                    yield answers[: options.max_results - sent]
                    over = sent + len(answers) > options.max_results
                    if over or await _has_more(pages):
                        log.warning(
                            "C-FIND %s: cut at max_results=%d", query.level, options.max_results
                        )
                    return
                sent += len(answers)
                yield answers
        finally:
            # Stop the database cursor's generator now, not when it is collected.
            if isinstance(pages, AsyncGenerator):
                await pages.aclose()


async def _has_more(pages: AsyncIterator[list[Any]]) -> bool:
    """Whether the matches go on past the page just sent (exactly max_results is no cut)."""
    async for page in pages:
        if page:
            return True
    return False
