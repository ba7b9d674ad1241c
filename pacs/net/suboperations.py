"""The C-STORE sub-operation loop of a C-MOVE or C-GET (PS3.4 C.4.2.3, C.4.3.3): send,
count, report progress, and give the final response.

The same loop serves both: for C-MOVE the sender is the sub-association pacs
opened to the destination, for C-GET it is the requester's own association.
"""

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pynetdicom.presentation import PresentationContext

from pacs.archive.deidentification import Deidentification
from pacs.archive.retrieve import Outgoing, RetrievableInstance, RetrieveService
from pacs.audit.auditor import Transfer
from pacs.dicom.levels import QueryLevel
from pacs.dicom.selection import Selection
from pacs.errors import PacsError
from pacs.net import status
from pacs.net.association import Association, AssociationClosed
from pacs.net.contexts import UNCOMPRESSED, proposal
from pacs.net.dimse import Command, CommandFields, DimseMessage
from pacs.net.identifier import encode_identifier
from pacs.net.operation_log import outcome

log = logging.getLogger(__name__)

# PS3.8 allows 128 presentation contexts in one A-ASSOCIATE-RQ.
MAX_CONTEXTS = 128
PENDING_INTERVAL = 0.1  # seconds between Pending responses of one retrieve


@dataclass
class Counts:
    """Sub-operation counts, as the C-MOVE/C-GET responses carry them."""

    remaining: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)
    bytes_sent: int = 0  # data set bytes of the instances sent, for the metrics

    def record(self, code: int, sop_instance_uid: str) -> None:
        """Count one finished sub-operation by the receiver's status."""
        self.remaining -= 1
        if code == status.SUCCESS:
            self.completed += 1
        elif code in status.STORE_WARNINGS:
            self.warning += 1
        else:
            self.failed += 1
            self.failed_uids.append(sop_instance_uid)

    def pending_elements(self) -> dict[str, int]:
        return {
            "NumberOfRemainingSuboperations": self.remaining,
            **self.final_elements(),
        }

    def final_elements(self) -> dict[str, int]:
        return {
            "NumberOfCompletedSuboperations": self.completed,
            "NumberOfFailedSuboperations": self.failed,
            "NumberOfWarningSuboperations": self.warning,
        }

    def describe(self) -> str:
        """The counts in words, for the operation's log line."""
        text = f"{self.completed} completed, {self.failed} failed, {self.warning} warning"
        return f"{text}, {self.remaining} remaining" if self.remaining else text

    def final_status(self) -> int:
        """Success, all failed (SUB_OPERATIONS_FAILED) or some failed (SUB_OPERATIONS_WARNING),
        per PS3.4 C.4.2.1.5."""
        if not self.failed and not self.warning:
            return status.SUCCESS
        if not self.completed and not self.warning:
            return status.SUB_OPERATIONS_FAILED
        return status.SUB_OPERATIONS_WARNING

    def failed_list(self) -> Dataset | None:
        if not self.failed_uids:
            return None
        identifier = Dataset()
        identifier.FailedSOPInstanceUIDList = self.failed_uids
        return identifier


def describe_selection(selection: Selection) -> str:
    """What a retrieve names, for log lines: its level and UIDs (a Patient ID is PHI: left out)."""
    uids = {
        QueryLevel.STUDY: selection.study_uids,
        QueryLevel.SERIES: selection.series_uids,
        QueryLevel.IMAGE: selection.sop_uids,
    }.get(selection.level, ())
    if not uids:
        return f"{selection.level} level"
    more = f" and {len(uids) - 1} more" if len(uids) > 1 else ""
    return f"{selection.level} {uids[0]}{more}"


def sub_association_contexts(pairs: set[tuple[str, str]]) -> list[PresentationContext]:
    """For each SOP Class: its stored syntaxes, then Explicit and Implicit VR Little Endian."""
    contexts = []
    for sop_class in sorted({sop for sop, _ in pairs}):
        stored = sorted({ts for sop, ts in pairs if sop == sop_class} - set(UNCOMPRESSED[:2]))
        contexts += [proposal(sop_class, [ts]) for ts in stored]
        contexts.append(proposal(sop_class, list(UNCOMPRESSED[:2])))
    return contexts[:MAX_CONTEXTS]


def accepted_syntaxes(assoc: Association, sop_class: str) -> list[str]:
    """Transfer syntaxes on which we may send C-STORE-RQ for this SOP Class."""
    return [cx.transfer_syntax for cx in assoc.contexts_for(sop_class) if cx.as_scu]


def _store_command(
    instance: RetrievableInstance, originator: tuple[str, int] | None, sent_uid: str | None = None
) -> CommandFields:
    """The C-STORE-RQ; `sent_uid`: the SOP Instance UID the data set carries when it is not
    the stored one (de-identified)."""
    command: CommandFields = {
        "CommandField": Command.C_STORE_RQ,
        "AffectedSOPClassUID": instance.sop_class_uid,
        "AffectedSOPInstanceUID": sent_uid or instance.sop_instance_uid,
        "Priority": 0,
    }
    if originator is not None:
        command["MoveOriginatorApplicationEntityTitle"] = originator[0]
        command["MoveOriginatorMessageID"] = originator[1]
    return command


async def _send_one(
    sender: Association, outgoing: Outgoing, originator: tuple[str, int] | None
) -> tuple[DimseMessage, int]:
    """Send one instance; return the receiver's response and the data set bytes sent.
    Raises PacsError when it cannot go."""
    instance = outgoing.instance
    syntax, data = await outgoing.open()
    try:
        context_id = sender.context_for(instance.sop_class_uid, syntax)
        assert context_id is not None
        command = _store_command(instance, originator, data.sop_instance_uid)
        # Read in one piece (most are): command and data set go out in one write.
        whole = data.whole
        payload = data.chunks() if whole is None else whole
        response = await sender.request_final(context_id, command, payload)
        sent = data.sent if whole is None else len(whole)
        if sender.sent_bytes_are_free:
            data.recycle()  # answered: every byte was sent, and nothing reads them any more
    finally:
        data.close()
    return response, sent


async def send_all(
    sender: Association,
    retrieve: RetrieveService,
    selection: Selection,
    counts: Counts,
    *,
    cancelled: Callable[[], bool],
    progress: Callable[[Counts], Awaitable[None]],
    transfer: Transfer,
    originator: tuple[str, int] | None = None,
    deidentification: Deidentification | None = None,
) -> bool:
    """Send every instance of the selection; return True when stopped by a C-CANCEL.

    `transfer` tallies, for the audit trail, the instances of each study sent;
    `deidentification`, when given, is applied to each instance as it is read.
    """
    accepted = functools.partial(accepted_syntaxes, sender)
    ahead = retrieve.read_ahead(selection, accepted, deidentification)
    async with contextlib.aclosing(ahead):
        async for outgoing in ahead:
            if cancelled():
                outgoing.discard()
                return True
            instance = outgoing.instance
            uid = instance.sop_instance_uid
            transfer.sending(instance.study_instance_uid, instance.patient_id)
            try:
                response, nbytes = await _send_one(sender, outgoing, originator)
            except AssociationClosed:
                raise
            except PacsError as exc:
                log.warning("C-STORE of %s to %s not sent: %s", uid, sender.peer, exc)
                code = status.PROCESSING_FAILURE
            else:
                code = response.status
                counts.bytes_sent += nbytes
                if code != status.SUCCESS:
                    _log_refusal(sender, uid, response)
            counts.record(code, uid)
            if code == status.SUCCESS or code in status.STORE_WARNINGS:
                transfer.sent(
                    instance.study_instance_uid, instance.patient_id, instance.sop_class_uid
                )
            await progress(counts)
    return False


def _log_refusal(sender: Association, uid: str, response: DimseMessage) -> None:
    """A sub-operation the receiver refused or warned about, with its ErrorComment."""
    _, word = outcome(response.status)
    comment = response.command.get("ErrorComment")
    log.warning(
        "C-STORE of %s to %s: %s 0x%04X%s",
        uid,
        sender.peer,
        word,
        response.status,
        f" ({comment})" if comment else "",
    )


def report_pending(
    assoc: Association, request: DimseMessage
) -> Callable[[Counts], Awaitable[None]]:
    """Pending responses with the counts so far, at most one per PENDING_INTERVAL (the final
    response follows the last sub-operation).

    Pending responses are optional (PS3.4 C.4.2.1.4, C.4.3.1.4): one per instance would
    weigh on the transfer, while a progress display needs a few a second.
    """
    last_sent = -PENDING_INTERVAL

    async def progress(counts: Counts) -> None:
        nonlocal last_sent
        now = time.monotonic()
        if counts.remaining and now - last_sent >= PENDING_INTERVAL:
            last_sent = now
            await assoc.respond(request, status.PENDING, elements=counts.pending_elements())

    return progress


async def finish(
    assoc: Association, request: DimseMessage, counts: Counts, cancelled: bool, detail: str
) -> None:
    """The final C-MOVE/C-GET response: counts, and the failed UIDs when some failed.

    `detail` (destination and selection) starts the operation's log line; the counts end it.
    """
    code = status.CANCEL if cancelled else counts.final_status()
    failed = counts.failed_list()
    data = encode_identifier(failed, request.transfer_syntax) if failed is not None else None
    elements = counts.pending_elements() if cancelled else counts.final_elements()
    detail = f"{detail}, {counts.describe()}"
    await assoc.respond(
        request, code, identifier=data, elements=elements, detail=detail, sent=counts.bytes_sent
    )
