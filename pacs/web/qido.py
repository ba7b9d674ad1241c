"""QIDO-RS (PS3.18 10.6): search for studies, series and instances, as DICOM JSON.

The search runs on C-FIND's matching (the archive's QueryService), so a QIDO and a
C-FIND with the same keys find the same entities. With `limit`, the results are
collected (one more than asked, to know whether to warn that there are more); without,
the array is streamed page by page.
"""

import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import hdrs, web

from pacs.archive.access import Operation
from pacs.dicom import json_model
from pacs.dicom.levels import QueryLevel
from pacs.errors import PacsError
from pacs.web.auth import require
from pacs.web.keys import QUERIES, base_url, route
from pacs.web.qido_params import Search, parse_search
from pacs.web.responses import DICOM_JSON, accepts_json, dicom_json

log = logging.getLogger(__name__)

# Added to each result by the archive's C-FIND responses, not QIDO attributes.
_DROPPED = ("00080005", "00080052", "00080054")
_AVAILABILITY = "00080056"
_RETRIEVE_URL = "00081190"
_UIDS = (("0020000D", "studies"), ("0020000E", "series"), ("00080018", "instances"))
_DEPTH = {QueryLevel.STUDY: 1, QueryLevel.SERIES: 2, QueryLevel.IMAGE: 3}
FUZZY_WARNING = (
    '299 pacs: "The fuzzymatching parameter is not supported. '
    'Only literal matching has been performed."'
)
MORE_WARNING = '299 pacs: "There are additional results that can be requested."'


def _retrieve_url(base: str, result: Mapping[str, Any], level: QueryLevel) -> str:
    path = []
    for tag, segment in _UIDS[: _DEPTH[level]]:
        values = result.get(tag, {}).get("Value") or [""]
        path.append(f"{segment}/{values[0]}")
    return f"{base}/{'/'.join(path)}"


def _finish(result: dict[str, Any], base: str, level: QueryLevel) -> dict[str, Any]:
    """A C-FIND response identifier as a QIDO-RS result (PS3.18 10.6.3.3)."""
    for tag in _DROPPED:
        result.pop(tag, None)
    result[_AVAILABILITY] = {"vr": "CS", "Value": ["ONLINE"]}
    result[_RETRIEVE_URL] = {"vr": "UR", "Value": [_retrieve_url(base, result, level)]}
    return dict(sorted(result.items()))


async def _results(request: web.Request, search: Search) -> AsyncIterator[list[dict[str, Any]]]:
    """The pages of results in the window offset, offset + limit (+1 to see if more exist)."""
    base = base_url(request)
    level = search.query.level
    skip = search.offset
    left = None if search.limit is None else search.limit + 1
    pages = request.app[QUERIES].find(search.query)
    try:
        async for page in pages:
            if skip >= len(page):
                skip -= len(page)
                continue
            window = page[skip:] if left is None else page[skip : skip + left]
            skip = 0
            yield [_finish(result, base, level) for result in window]
            if left is not None:
                left -= len(window)
                if left <= 0:
                    return
    finally:
        await pages.aclose()


async def _search(
    request: web.Request, level: QueryLevel, relative: dict[str, str]
) -> web.StreamResponse:
    caller = require(request, Operation.FIND)
    if not accepts_json(request):
        raise web.HTTPNotAcceptable(text=f"QIDO-RS answers in {DICOM_JSON}\n")
    started = time.perf_counter()
    search = parse_search(request.query, level, relative)
    warnings = [FUZZY_WARNING] if search.fuzzy_ignored else []
    if search.limit is None:
        response, count = await _stream(request, search, warnings)
    else:
        found = [result async for page in _results(request, search) for result in page]
        count = min(len(found), search.limit)
        if len(found) > search.limit:
            warnings.append(MORE_WARNING)
        response = dicom_json(found[: search.limit])
        for warning in warnings:
            response.headers.add(hdrs.WARNING, warning)
    log.info(
        "QIDO-RS %s by %s@%s: keys %s, %d results in %.3f s",
        level,
        caller.name,
        request.remote,
        ",".join(c.keyword for c in search.query.constraints) or "none",
        count,
        time.perf_counter() - started,
    )
    return response


async def _stream(
    request: web.Request, search: Search, warnings: list[str]
) -> tuple[web.StreamResponse, int]:
    """Write the JSON array as the pages come, so memory holds one page whatever matches."""
    response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: DICOM_JSON})
    for warning in warnings:
        response.headers.add(hdrs.WARNING, warning)
    response.enable_compression()
    count = 0
    try:
        async for page in _results(request, search):
            if not page:
                continue
            if not response.prepared:
                await response.prepare(request)
            chunk = json_model.dumps(page)[1:-1]
            await response.write(f"{',' if count else '['}{chunk}".encode())
            count += len(page)
    except PacsError as exc:
        if not response.prepared:
            raise  # answered with its status by the error middleware
        # The status has gone: only a cut connection tells the client the array is not whole.
        log.error(
            "QIDO-RS %s: failed after %d results, connection closed: %s", request.path, count, exc
        )
        if request.transport is not None:
            request.transport.close()
        return response, count
    if not response.prepared:
        await response.prepare(request)
    await response.write_eof(b"]" if count else b"[]")
    return response, count


async def search_studies(request: web.Request) -> web.StreamResponse:
    return await _search(request, QueryLevel.STUDY, {})


async def search_series(request: web.Request) -> web.StreamResponse:
    return await _search(request, QueryLevel.SERIES, _path_uids(request))


async def search_instances(request: web.Request) -> web.StreamResponse:
    return await _search(request, QueryLevel.IMAGE, _path_uids(request))


def _path_uids(request: web.Request) -> dict[str, str]:
    info = request.match_info
    uids = {"StudyInstanceUID": info.get("study"), "SeriesInstanceUID": info.get("series")}
    return {keyword: uid for keyword, uid in uids.items() if uid}


def add_routes(app: web.Application) -> None:
    """GET /studies, /series, /instances and the study- and series-relative forms."""
    app.router.add_get(route(app, "/studies"), search_studies)
    app.router.add_get(route(app, "/series"), search_series)
    app.router.add_get(route(app, "/instances"), search_instances)
    app.router.add_get(route(app, "/studies/{study}/series"), search_series)
    app.router.add_get(route(app, "/studies/{study}/instances"), search_instances)
    app.router.add_get(route(app, "/studies/{study}/series/{series}/instances"), search_instances)
