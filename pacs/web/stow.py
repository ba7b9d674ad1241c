"""STOW-RS (PS3.18 10.5): store instances sent as multipart/related; type="application/dicom".

Each part goes through the archive's ingest, as a C-STORE does (checks, deduplication,
duplicate policy, group commit, durable before the answer). The response lists what
was stored (ReferencedSOPSequence) and what was not, with a reason per instance
(FailedSOPSequence): 200 when all were stored, 202 when some, 409 when none.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.helpers import parse_mimetype

from pacs.archive.access import Operation
from pacs.archive.ingest import Arrival, IngestOutcome
from pacs.audit.events import Node
from pacs.errors import InvalidInstance, PacsError
from pacs.web.auth import Caller, require
from pacs.web.errors import failure_reason
from pacs.web.keys import AUDITOR, INGEST, SERVICES, base_url, route
from pacs.web.responses import DICOM_JSON, accepts_json, dicom_json
from pacs.web.stow_parts import data_set, read_meta

log = logging.getLogger(__name__)

DICOM = "application/dicom"
# Parts of one request being made durable at once; each holds a staging file.
MAX_IN_FLIGHT = 8
_NOT_UNDERSTOOD = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122  # PS3.7 C.4.2 (C-STORE's "SOP Class not supported")


def _ui(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


@dataclass(slots=True, eq=False)  # hashable by identity: the audit trail's key
class _Outcomes:
    """What the request stored and failed, as the response's sequences."""

    base: str
    # By part number: parts finish in any order, the response lists them in the body's.
    referenced: dict[int, dict[str, Any]] = field(default_factory=dict)
    failed: dict[int, dict[str, Any]] = field(default_factory=dict)
    studies: set[str] = field(default_factory=set)

    def stored(self, number: int, arrival: Arrival, outcome: IngestOutcome) -> None:
        study = outcome.study_instance_uid
        self.studies.add(study)
        url = f"{self.base}/studies/{study}/instances/{arrival.sop_instance_uid}"
        self.referenced[number] = {
            "00081150": _ui(arrival.sop_class_uid),
            "00081155": _ui(arrival.sop_instance_uid),
            "00081190": {"vr": "UR", "Value": [url]},
        }

    def refused(self, number: int, sop_class: str, sop_instance: str, reason: int) -> None:
        self.failed[number] = {
            "00081150": _ui(sop_class),
            "00081155": _ui(sop_instance),
            "00081197": {"vr": "US", "Value": [reason]},
        }

    def response(self) -> web.Response:
        body: dict[str, Any] = {}
        if len(self.studies) == 1:
            body["00081190"] = {
                "vr": "UR",
                "Value": [f"{self.base}/studies/{next(iter(self.studies))}"],
            }
        if self.failed:
            body["00081198"] = {"vr": "SQ", "Value": _in_order(self.failed)}
        if self.referenced:
            body["00081199"] = {"vr": "SQ", "Value": _in_order(self.referenced)}
        status = 200 if not self.failed else 202 if self.referenced else 409
        return dicom_json(body, status=status)


def _in_order(items: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    return [items[number] for number in sorted(items)]


def _check_content_type(request: web.Request) -> None:
    """415 unless the body is multipart/related of application/dicom parts."""
    mime = parse_mimetype(request.headers.get(hdrs.CONTENT_TYPE, ""))
    kind = mime.parameters.get("type", DICOM).strip('"').lower()
    if (mime.type, mime.subtype) != ("multipart", "related") or kind != DICOM:
        raise web.HTTPUnsupportedMediaType(
            text=f'STOW-RS takes multipart/related; type="{DICOM}"\n'
        )


@dataclass(frozen=True, slots=True)
class _Part:
    """One part of the body: its place, and an event set once its bytes are all read."""

    number: int
    reader: BodyPartReader
    read: asyncio.Event = field(default_factory=asyncio.Event)


async def _store_part(
    request: web.Request, part: _Part, caller: Caller, study: str | None, out: _Outcomes
) -> None:
    """Store one part, recording its outcome; a failure is the part's, not the request's."""
    media = parse_mimetype(part.reader.headers.get(hdrs.CONTENT_TYPE, DICOM))
    if f"{media.type}/{media.subtype}" != DICOM:
        out.refused(part.number, "", "", _NOT_UNDERSTOOD)
        return
    arrival = None
    try:
        meta, first = await read_meta(part.reader)
        if meta.sop_class_uid not in request.app[SERVICES].storage_classes:
            uids = (meta.sop_class_uid, meta.sop_instance_uid)
            log.warning("STOW-RS by %s: SOP Class %s is not a storage class", caller.name, uids[0])
            out.refused(part.number, *uids, SOP_CLASS_NOT_SUPPORTED)
            return
        arrival = Arrival(
            meta.sop_class_uid,
            meta.sop_instance_uid,
            meta.transfer_syntax_uid,
            caller.peer,
            study_instance_uid=study,
        )
        fragments = data_set(first, part.reader, part.read)
        outcome = await request.app[INGEST].ingest(arrival, fragments)
    except PacsError as exc:
        uids = (arrival.sop_class_uid, arrival.sop_instance_uid) if arrival else ("", "")
        log.warning("STOW-RS by %s: SOP Instance %s not stored: %s", caller.name, uids[1], exc)
        out.refused(part.number, *uids, failure_reason(exc))
        return
    out.stored(part.number, arrival, outcome)
    node = Node(caller.peer or caller.name, request.remote or "")
    request.app[AUDITOR].instance_stored(
        out, node, outcome.study_instance_uid, outcome.patient_id, arrival.sop_class_uid
    )


async def store(request: web.Request) -> web.StreamResponse:
    caller = require(request, Operation.STORE)
    if not accepts_json(request):
        raise web.HTTPNotAcceptable(text=f"STOW-RS answers in {DICOM_JSON}\n")
    _check_content_type(request)
    started = time.perf_counter()
    study = request.match_info.get("study")
    out = _Outcomes(base_url(request))
    try:
        await _store_parts(request, caller, study, out)
    finally:
        request.app[AUDITOR].association_ended(out)
    if not out.referenced and not out.failed:
        raise web.HTTPBadRequest(text="the body holds no instances\n")
    log.info(
        "STOW-RS by %s@%s: %d stored, %d failed in %.3f s",
        caller.name,
        request.remote,
        len(out.referenced),
        len(out.failed),
        time.perf_counter() - started,
    )
    return out.response()


async def _store_parts(
    request: web.Request, caller: Caller, study: str | None, out: _Outcomes
) -> None:
    """Store every part. The next part is read once the previous one's bytes are, while
    that one is made durable: fsyncs overlap and index commits group, as for several
    associations. All are durable (or failed) when this returns."""
    storing: set[asyncio.Task[None]] = set()
    number = 0
    try:
        reader = await request.multipart()
        while (reader_part := await reader.next()) is not None:
            if not isinstance(reader_part, BodyPartReader):  # nested multipart: no instance
                out.refused(number, "", "", _NOT_UNDERSTOOD)
                number += 1
                continue
            part = _Part(number, reader_part)
            number += 1
            task = asyncio.create_task(_store_part(request, part, caller, study, out))
            storing.add(task)
            task.add_done_callback(storing.discard)
            await _until_read(part, task)
            if len(storing) >= MAX_IN_FLIGHT:
                await asyncio.wait(storing, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*storing)
    except ValueError as exc:  # aiohttp's word for a body that is not multipart
        await _abandon(storing)
        raise InvalidInstance(f"the multipart body cannot be read: {exc}") from None
    except BaseException:
        await _abandon(storing)
        raise


async def _until_read(part: _Part, task: asyncio.Task[None]) -> None:
    """Wait until the part's bytes are all read, or its store ended sooner (it failed)."""
    read = asyncio.create_task(part.read.wait())
    try:
        await asyncio.wait({read, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        read.cancel()


async def _abandon(storing: set[asyncio.Task[None]]) -> None:
    for task in storing:
        task.cancel()
    await asyncio.gather(*storing, return_exceptions=True)


def add_routes(app: web.Application) -> None:
    """POST /studies and /studies/{study}."""
    app.router.add_post(route(app, "/studies"), store)
    app.router.add_post(route(app, "/studies/{study}"), store)
