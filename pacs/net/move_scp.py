"""C-MOVE SCP (PS3.4 C.4.2): send what the identifier names to a configured peer."""

import logging
from collections.abc import Mapping

from pacs.archive.deidentification import Deidentifications
from pacs.archive.retrieve import RetrieveService
from pacs.audit.auditor import Alert, Auditor
from pacs.audit.events import Node
from pacs.dicom.selection import parse_selection
from pacs.errors import InvalidIdentifier, PacsError
from pacs.net import deidentified_transfer, status
from pacs.net.association import Association, AssociationClosed
from pacs.net.audit_peer import peer_node
from pacs.net.dimse import DimseMessage
from pacs.net.handlers import Handler
from pacs.net.handshake import AssociationFailed, request_association
from pacs.net.identifier import decode_identifier
from pacs.net.peers import Destination, Requestor
from pacs.net.permissions import Gatekeeper, refuse_permission
from pacs.net.status import Service
from pacs.net.suboperations import (
    Counts,
    describe_selection,
    finish,
    report_pending,
    send_all,
    sub_association_contexts,
)

log = logging.getLogger(__name__)


def _not_authorized(
    assoc: Association, destination: str, gatekeeper: Gatekeeper, auditor: Auditor
) -> str:
    """Why the requester may not move to this configured peer, logged and audited; "" when
    it may."""
    requester = assoc.agreement.calling_ae_title
    if gatekeeper.may_move_to(requester, destination):
        return ""
    comment = f"{requester} may not move to {destination}"
    refuse_permission(requester, assoc.peer.partition("@")[2], f"C-MOVE refused: {comment}")
    auditor.security_alert(peer_node(assoc), Alert.PERMISSION_DENIED, f"C-MOVE: {comment}")
    return comment


def make_move_handler(
    retrieve: RetrieveService,
    destinations: Mapping[str, Destination],
    requestor: Requestor,
    auditor: Auditor,
    gatekeeper: Gatekeeper | None = None,
    *,
    deidentifications: Deidentifications | None = None,
) -> Handler:
    """The C-MOVE handler: destinations are the configured peers by AE title.

    A destination the requester may not use (its move_destinations) gets NOT_AUTHORIZED,
    Refused: Not Authorized (PS3.7 C.5), with an ErrorComment.
    """

    async def handle_move(assoc: Association, request: DimseMessage) -> None:
        title = str(request.command.get("MoveDestination", "")).strip()
        detail = f"to {title}"
        try:
            identifier = decode_identifier(await request.read_data_set(), request.transfer_syntax)
            selection = parse_selection(identifier, request.abstract_syntax)
        except InvalidIdentifier as exc:
            code = status.for_error(exc, Service.RETRIEVE)
            await assoc.respond(request, code, str(exc), detail=detail)
            return
        detail += f", {describe_selection(selection)}"
        destination = destinations.get(title)
        if destination is None:
            comment = f"{title!r} is not a configured peer"
            await assoc.respond(request, status.MOVE_DESTINATION_UNKNOWN, comment, detail=detail)
            return
        if gatekeeper is not None and (
            refusal := _not_authorized(assoc, title, gatekeeper, auditor)
        ):
            await assoc.respond(request, status.NOT_AUTHORIZED, refusal, detail=detail)
            return
        try:
            total, pairs = await retrieve.summary(selection)
        except PacsError as exc:
            code = status.for_error(exc, Service.RETRIEVE)
            await assoc.respond(request, code, str(exc), detail=detail)
            return
        counts = Counts(remaining=total)
        if total == 0:
            await finish(assoc, request, counts, cancelled=False, detail=detail)
            return
        purpose = f"C-MOVE from {assoc.peer}"
        try:
            sub = await request_association(
                destination.host,
                destination.port,
                calling_ae_title=requestor.ae_title,
                called_ae_title=title,
                contexts=sub_association_contexts(pairs),
                timeouts=requestor.timeouts,
                max_pdu_length=requestor.max_pdu_length,
                purpose=purpose,
                tls=requestor.tls_for(destination),
                certificate_subject=destination.certificate_subject,
                auditor=requestor.auditor,
            )
        except AssociationFailed as exc:
            where = f"{title}@{destination.host}:{destination.port}"
            log.warning("association to %s for %s failed: %s", where, purpose, exc)
            comment = f"destination unreachable: {exc}"
            await assoc.respond(request, status.SUB_OPERATIONS_FAILED, comment, detail=detail)
            return

        cancelled = False
        transfer = auditor.transfer(peer_node(assoc), Node(title, destination.host))
        deidentification = deidentified_transfer.start(deidentifications, title)
        try:
            cancelled = await send_all(
                sub,
                retrieve,
                selection,
                counts,
                cancelled=lambda: assoc.cancelled(request.message_id),
                progress=report_pending(assoc, request),
                transfer=transfer,
                originator=(assoc.agreement.calling_ae_title, request.message_id),
                deidentification=deidentification,
            )
        except AssociationClosed:
            if assoc.closed:
                raise
            # The destination went away (its association's closing line says how): what
            # was not sent has failed; the mover still gets its final response.
            counts.failed += counts.remaining
            counts.remaining = 0
        finally:
            await sub.release()
            await deidentified_transfer.finish(deidentifications, deidentification)
            how = deidentified_transfer.describe(deidentification)
            transfer.finished(counts.failed, f"C-MOVE {counts.describe()}{how}")
        await finish(assoc, request, counts, cancelled, detail + how)

    return handle_move
