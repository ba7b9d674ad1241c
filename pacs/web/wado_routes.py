"""WADO-RS (PS3.18 10.4): instances, metadata, frames and bulk data of stored studies.

Handlers check the caller's retrieve permission (what C-GET needs), negotiate the
transfer syntax from Accept (`accept.py`), ask `pacs.archive.wado` and write the
answer; a refusal (404, 406, 400) is decided before the first byte of a body.
"""

import asyncio
import gzip
import logging
import time
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from pacs.archive.access import Operation
from pacs.archive.wado import WadoService
from pacs.archive.wado_retrieve import Part
from pacs.audit.auditor import Transfer
from pacs.audit.events import Node
from pacs.dicom.levels import QueryLevel
from pacs.dicom.selection import Selection
from pacs.web.accept import DICOM, OCTET_STREAM, accepted_syntaxes
from pacs.web.auth import require
from pacs.web.errors import BadRequest
from pacs.web.keys import AUDITOR, WADO, base_url, route
from pacs.web.multipart import MultipartResponse, one

log = logging.getLogger(__name__)

STUDY = "/studies/{study}"
SERIES = STUDY + "/series/{series}"
INSTANCE = SERIES + "/instances/{instance}"
METADATA_TYPES = ("application/dicom+json", "application/json", "application/*", "*/*")


def _selection(request: web.Request) -> Selection:
    info = request.match_info
    if "instance" in info:
        uids = (info["study"],), (info["series"],), (info["instance"],)
        return Selection(QueryLevel.IMAGE, (), *uids)
    if "series" in info:
        return Selection(QueryLevel.SERIES, (), (info["study"],), (info["series"],))
    return Selection(QueryLevel.STUDY, (), (info["study"],))


def _dicom_type(transfer_syntax: str) -> str:
    return f"{DICOM}; transfer-syntax={transfer_syntax}"


async def retrieve_instances(request: web.Request) -> web.StreamResponse:
    """A study, series or instance as multipart/related; type="application/dicom"."""
    caller = require(request, Operation.GET)
    wado = request.app[WADO]
    accepted = accepted_syntaxes(request.headers.get("Accept"), DICOM)
    selection = _selection(request)
    started = time.monotonic()
    count = await wado.instances.check(selection, accepted)
    listed = await wado.instances.listed(selection, count)
    sizes = None if listed is None else wado.instances.stored_sizes(listed, accepted)
    body = MultipartResponse(DICOM)
    parts = None if sizes is None else [(_dicom_type(syntax), size) for syntax, size in sizes]
    await body.start(request, None if parts is None else body.length(parts))
    node = Node(caller.peer or caller.name, request.remote or "")
    transfer = request.app[AUDITOR].transfer(node, node)  # as a C-GET: the caller receives
    try:
        await _send_instances(body, wado.instances.parts(listed or selection, accepted), transfer)
    except Exception as exc:
        # The status is sent: cutting the body short is how the client learns.
        log.warning("WADO-RS %s by %s cut short: %s", request.path, caller.name, exc)
        transfer.finished(count - body.parts, f"cut short: {exc}")
        if request.transport is not None:
            request.transport.close()
        return body.response
    transfer.finished(0)
    log.info(
        "WADO-RS %s by %s: %d instances, %d bytes, %.0f ms",
        request.path,
        caller.name,
        body.parts,
        body.bytes,
        (time.monotonic() - started) * 1000,
    )
    return body.response


async def _send_instances(
    body: MultipartResponse, parts: AsyncIterator[Part], transfer: Transfer
) -> None:
    async for part in parts:
        instance = part.instance
        transfer.sending(instance.study_instance_uid, instance.patient_id)
        await body.part(_dicom_type(part.transfer_syntax_uid), part.chunks)
        transfer.sent(instance.study_instance_uid, instance.patient_id, instance.sop_class_uid)
    await body.finish()


async def _metadata_response(request: web.Request, gzipped: bytes) -> web.Response:
    accept = request.headers.get("Accept", "*/*")
    if not any(kind in accept for kind in METADATA_TYPES):
        raise web.HTTPNotAcceptable(text="metadata is application/dicom+json\n")
    headers = {"Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        body = gzipped
    else:
        # A large series' metadata inflates for milliseconds: off the loop.
        body = await asyncio.to_thread(gzip.decompress, gzipped)
    return web.Response(
        body=body, content_type="application/dicom+json", charset="utf-8", headers=headers
    )


async def study_metadata(request: web.Request) -> web.Response:
    require(request, Operation.GET)
    wado: WadoService = request.app[WADO]
    gzipped = await wado.metadata.study(request.match_info["study"], base_url(request))
    return await _metadata_response(request, gzipped)


async def series_metadata(request: web.Request) -> web.Response:
    require(request, Operation.GET)
    info = request.match_info
    wado = request.app[WADO]
    gzipped = await wado.metadata.series(info["study"], info["series"], base_url(request))
    return await _metadata_response(request, gzipped)


async def instance_metadata(request: web.Request) -> web.Response:
    require(request, Operation.GET)
    info = request.match_info
    wado = request.app[WADO]
    uids = info["study"], info["series"], info["instance"]
    gzipped = await wado.metadata.instance(*uids, base_url(request))
    return await _metadata_response(request, gzipped)


def _frame_numbers(text: str) -> list[int]:
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError as exc:
        raise BadRequest(f"frame list {text!r} is not comma-separated numbers") from exc
    if not numbers or min(numbers) < 1:
        raise BadRequest(f"frame list {text!r}: frames are numbered from 1")
    return numbers


async def _send_frames(
    request: web.Request, numbers: Sequence[int], accepted: Sequence[str]
) -> web.StreamResponse:
    info = request.match_info
    wado = request.app[WADO]
    reply = await wado.frames.frames(
        info["study"], info["series"], info["instance"], numbers, accepted
    )
    body = MultipartResponse(OCTET_STREAM)
    await body.start(request)
    content_type = f"{OCTET_STREAM}; transfer-syntax={reply.transfer_syntax_uid}"
    try:
        async for frame in reply.frames:
            await body.part(content_type, one(frame))
        await body.finish()
    except Exception as exc:
        log.warning("WADO-RS %s cut short: %s", request.path, exc)
        if request.transport is not None:
            request.transport.close()
    return body.response


async def frames(request: web.Request) -> web.StreamResponse:
    """Frames of an instance, one part each, with their syntax in the part's Content-Type."""
    require(request, Operation.GET)
    numbers = _frame_numbers(request.match_info["frames"])
    accepted = accepted_syntaxes(request.headers.get("Accept"), OCTET_STREAM, images=True)
    return await _send_frames(request, numbers, accepted)


async def bulkdata(request: web.Request) -> web.StreamResponse:
    """A bulk data value as stored (the BulkDataURIs of the metadata point here)."""
    require(request, Operation.GET)
    info = request.match_info
    try:
        tag = int(info["tag"], 16)
    except ValueError as exc:
        raise BadRequest(f"{info['tag']!r} is not a tag (8 hexadecimal digits)") from exc
    accepted_syntaxes(request.headers.get("Accept"), OCTET_STREAM, images=True)
    wado = request.app[WADO]
    found = await wado.frames.bulk_value(info["study"], info["series"], info["instance"], tag)
    if not isinstance(found, bytes):
        body = MultipartResponse(OCTET_STREAM)
        await body.start(request)
        content_type = f"{OCTET_STREAM}; transfer-syntax={found.transfer_syntax_uid}"
        async for frame in found.frames:
            await body.part(content_type, one(frame))
        return await body.finish()
    body = MultipartResponse(OCTET_STREAM)
    await body.start(request)
    await body.part(OCTET_STREAM, one(found))
    return await body.finish()


def add_routes(app: web.Application) -> None:
    """Add the WADO-RS routes."""
    app.router.add_get(route(app, STUDY), retrieve_instances)
    app.router.add_get(route(app, SERIES), retrieve_instances)
    app.router.add_get(route(app, INSTANCE), retrieve_instances)
    app.router.add_get(route(app, STUDY + "/metadata"), study_metadata)
    app.router.add_get(route(app, SERIES + "/metadata"), series_metadata)
    app.router.add_get(route(app, INSTANCE + "/metadata"), instance_metadata)
    app.router.add_get(route(app, INSTANCE + "/frames/{frames}"), frames)
    app.router.add_get(route(app, INSTANCE + "/bulkdata/{tag}"), bulkdata)
