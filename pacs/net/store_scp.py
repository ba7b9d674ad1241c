"""C-STORE SCP (PS3.4 B.2): hand the arriving data set to ingest, answer with its verdict."""

import logging

from pacs.archive.ingest import Arrival, Ingest
from pacs.audit.auditor import Auditor
from pacs.errors import PacsError
from pacs.net import status
from pacs.net.association import Association
from pacs.net.audit_peer import peer_node
from pacs.net.dimse import DimseMessage
from pacs.net.handlers import Handler
from pacs.net.status import Service

log = logging.getLogger(__name__)


def make_store_handler(ingest: Ingest, auditor: Auditor) -> Handler:
    """The C-STORE handler bound to this archive's ingest; stores are audited per association."""

    async def handle_store(assoc: Association, request: DimseMessage) -> None:
        sop_class = str(request.command.get("AffectedSOPClassUID", ""))
        if sop_class != request.abstract_syntax:
            await request.discard()
            await assoc.respond(
                request,
                status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                f"SOP Class {sop_class} sent on a {request.abstract_syntax} context",
            )
            return
        arrival = Arrival(
            sop_class_uid=sop_class,
            sop_instance_uid=str(request.command.get("AffectedSOPInstanceUID", "")),
            transfer_syntax_uid=request.transfer_syntax,
            source_ae_title=assoc.agreement.calling_ae_title,
        )
        try:
            stored = await ingest.ingest(arrival, request.fragments())
        except PacsError as exc:
            await request.discard()
            if not assoc.closed:
                await assoc.respond(request, status.for_error(exc, Service.STORE), str(exc))
            else:  # no response can go: this is the operation's line
                uid = arrival.sop_instance_uid
                log.warning("C-STORE from %s: SOP Instance %s not stored: %s", assoc.peer, uid, exc)
            return
        auditor.instance_stored(
            assoc, peer_node(assoc), stored.study_instance_uid, stored.patient_id, sop_class
        )
        await assoc.respond(request, status.SUCCESS, stored=stored.added_bytes)

    return handle_store
