"""STOW-RS (PS3.18 10.5): store instances sent as multipart/related; type="application/dicom".

Each part goes through the archive's ingest, as a C-STORE does (checks, deduplication,
duplicate policy, group commit, durable before the answer). The response lists what
was stored (ReferencedSOPSequence) and what was not, with a reason per instance
(FailedSOPSequence): 200 when all were stored, 202 when some, 409 when none.
"""

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.helpers import parse_mimetype

from pacs.archive.access import Operation
from pacs.archive.ingest import Arrival, IngestOutcome
from pacs.audit.events import Node
from pacs.errors import InvalidInstance, PacsError
from pacs.web.auth import Caller, require
from pacs.web.errors import failure_reason
from pacs.web.keys import AUDITOR, INGEST, base_url, route
from pacs.web.responses import DICOM_JSON, accepts_json, dicom_json
from pacs.web.stow_parts import data_set, read_meta

log = logging.getLogger(__name__)

DICOM = "application/dicom"
_NOT_UNDERSTOOD = 0xC000


def _ui(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


@dataclass(slots=True, eq=False)  # hashable by identity: the audit trail's key
class _Outcomes:
    """What the request stored and failed, as the response's sequences."""

    base: str
    referenced: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    studies: set[str] = field(default_factory=set)

    def stored(self, arrival: Arrival, outcome: IngestOutcome) -> None:
        study = outcome.study_instance_uid
        self.studies.add(study)
        url = f"{self.base}/studies/{study}/instances/{arrival.sop_instance_uid}"
        self.referenced.append(
            {
                "00081150": _ui(arrival.sop_class_uid),
                "00081155": _ui(arrival.sop_instance_uid),
                "00081190": {"vr": "UR", "Value": [url]},
            }
        )

    def refused(self, sop_class: str, sop_instance: str, reason: int) -> None:
        self.failed.append(
            {
                "00081150": _ui(sop_class),
                "00081155": _ui(sop_instance),
                "00081197": {"vr": "US", "Value": [reason]},
            }
        )

    def response(self) -> web.Response:
        body: dict[str, Any] = {}
        if len(self.studies) == 1:
            body["00081190"] = {
                "vr": "UR",
                "Value": [f"{self.base}/studies/{next(iter(self.studies))}"],
            }
        if self.failed:
            body["00081198"] = {"vr": "SQ", "Value": self.failed}
        if self.referenced:
            body["00081199"] = {"vr": "SQ", "Value": self.referenced}
        status = 200 if not self.failed else 202 if self.referenced else 409
        return dicom_json(body, status=status)


def _check_content_type(request: web.Request) -> None:
    """415 unless the body is multipart/related of application/dicom parts."""
    mime = parse_mimetype(request.headers.get(hdrs.CONTENT_TYPE, ""))
    kind = mime.parameters.get("type", DICOM).strip('"').lower()
    if (mime.type, mime.subtype) != ("multipart", "related") or kind != DICOM:
        raise web.HTTPUnsupportedMediaType(
            text=f'STOW-RS takes multipart/related; type="{DICOM}"\n'
        )


async def _store_part(
    request: web.Request, part: BodyPartReader, caller: Caller, study: str | None, out: _Outcomes
) -> None:
    """Store one part, recording its outcome; a failure is the part's, not the request's."""
    media = parse_mimetype(part.headers.get(hdrs.CONTENT_TYPE, DICOM))
    if f"{media.type}/{media.subtype}" != DICOM:
        out.refused("", "", _NOT_UNDERSTOOD)
        return
    arrival = None
    try:
        meta, first = await read_meta(part)
        arrival = Arrival(
            meta.sop_class_uid,
            meta.sop_instance_uid,
            meta.transfer_syntax_uid,
            caller.peer,
            study_instance_uid=study,
        )
        outcome = await request.app[INGEST].ingest(arrival, data_set(first, part))
    except PacsError as exc:
        uids = (arrival.sop_class_uid, arrival.sop_instance_uid) if arrival else ("", "")
        log.warning("STOW-RS by %s: SOP Instance %s not stored: %s", caller.name, uids[1], exc)
        out.refused(*uids, failure_reason(exc))
        return
    out.stored(arrival, outcome)
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
        reader = await request.multipart()
        await _store_parts(request, reader, caller, study, out)
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
    request: web.Request, reader: MultipartReader, caller: Caller, study: str | None, out: _Outcomes
) -> None:
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):  # a nested multipart: not an instance
                out.refused("", "", _NOT_UNDERSTOOD)
                continue
            await _store_part(request, part, caller, study, out)
    except ValueError as exc:  # aiohttp's word for a body that is not multipart
        raise InvalidInstance(f"the multipart body cannot be read: {exc}") from None


def add_routes(app: web.Application) -> None:
    """POST /studies and /studies/{study}."""
    app.router.add_post(route(app, "/studies"), store)
    app.router.add_post(route(app, "/studies/{study}"), store)
