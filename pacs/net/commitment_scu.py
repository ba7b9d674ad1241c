"""Storage Commitment reports (PS3.4 J.3.3): N-EVENT-REPORT on the requester's own
association while it is open, otherwise on a new one to the requester as a configured peer."""

import logging
import weakref
from collections.abc import Mapping
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pacs.archive.commitment import ReportNotDelivered
from pacs.errors import ProtocolError
from pacs.net import status
from pacs.net.association import Association
from pacs.net.contexts import STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE, proposal
from pacs.net.dimse import Command
from pacs.net.handshake import request_association
from pacs.net.identifier import encode_identifier
from pacs.net.peers import Destination, Requestor

log = logging.getLogger(__name__)

ALL_COMMITTED, SOME_FAILED = 1, 2


class OpenAssociations:
    """The associations commitment requests arrived on, by calling AE title, while they live."""

    def __init__(self) -> None:
        self._by_title: weakref.WeakValueDictionary[str, Association] = (
            weakref.WeakValueDictionary()
        )

    def note(self, assoc: Association) -> None:
        self._by_title[assoc.agreement.calling_ae_title] = assoc

    def usable(self, ae_title: str) -> Association | None:
        assoc = self._by_title.get(ae_title)
        if assoc is None or assoc.closed or assoc.context_for(STORAGE_COMMITMENT) is None:
            return None
        return assoc


def event_information(
    transaction_uid: str, result: dict[str, Any], retrieve_ae_title: str
) -> Dataset:
    """The Event Information of the report: committed and failed references (PS3.4 J.3.3.1)."""
    info = Dataset()
    info.TransactionUID = transaction_uid
    info.RetrieveAETitle = retrieve_ae_title
    if result["committed"]:
        info.ReferencedSOPSequence = [_item(c, i) for c, i in result["committed"]]
    if result["failed"]:
        failed = []
        for sop_class, sop_instance, reason in result["failed"]:
            item = _item(sop_class, sop_instance)
            item.FailureReason = int(reason)
            failed.append(item)
        info.FailedSOPSequence = failed
    return info


def _item(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


class NetReportSender:
    """Implements archive.commitment.ReportSender over this AE's upper layer."""

    def __init__(
        self,
        open_associations: OpenAssociations,
        peers: Mapping[str, Destination],
        requestor: Requestor,
    ) -> None:
        self._open = open_associations
        self._peers = peers
        self._requestor = requestor

    async def send_report(
        self, requester_ae_title: str, transaction_uid: str, result: dict[str, Any]
    ) -> None:
        info = event_information(transaction_uid, result, self._requestor.ae_title)
        event = SOME_FAILED if result["failed"] else ALL_COMMITTED
        assoc = self._open.usable(requester_ae_title)
        if assoc is not None:
            try:
                await _report(assoc, event, info)
                return
            except ProtocolError as exc:
                log.info("commitment %s: same association failed (%s)", transaction_uid, exc)
        peer = self._peers.get(requester_ae_title)
        if peer is None:
            raise ReportNotDelivered(f"{requester_ae_title!r} is gone and is not a configured peer")
        try:
            assoc = await request_association(
                peer.host,
                peer.port,
                calling_ae_title=self._requestor.ae_title,
                called_ae_title=requester_ae_title,
                contexts=[
                    proposal(
                        STORAGE_COMMITMENT,
                        [ExplicitVRLittleEndian, ImplicitVRLittleEndian],
                        scu_role=False,
                        scp_role=True,
                    )
                ],
                timeouts=self._requestor.timeouts,
                max_pdu_length=self._requestor.max_pdu_length,
                purpose=f"Storage Commitment report {transaction_uid}",
                tls=self._requestor.tls_for(peer),
                certificate_subject=peer.certificate_subject,
                auditor=self._requestor.auditor,
            )
        except ProtocolError as exc:
            raise ReportNotDelivered(str(exc)) from exc
        try:
            await _report(assoc, event, info)
        except ProtocolError as exc:
            raise ReportNotDelivered(str(exc)) from exc
        finally:
            await assoc.release()


async def _report(assoc: Association, event: int, info: Dataset) -> None:
    context_id = assoc.context_for(STORAGE_COMMITMENT)
    if context_id is None:
        raise ProtocolError(f"{assoc.peer} accepted no Storage Commitment context")
    command = {
        "CommandField": Command.N_EVENT_REPORT_RQ,
        "AffectedSOPClassUID": STORAGE_COMMITMENT,
        "AffectedSOPInstanceUID": STORAGE_COMMITMENT_INSTANCE,
        "EventTypeID": event,
    }
    syntax = str(assoc.agreement.accepted[context_id].transfer_syntax[0])
    response = await assoc.request_final(context_id, command, encode_identifier(info, syntax))
    if response.status != status.SUCCESS:
        raise ProtocolError(f"{assoc.peer} answered the report with 0x{response.status:04X}")
