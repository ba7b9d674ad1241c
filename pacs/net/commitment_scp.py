"""Storage Commitment Push Model SCP (PS3.4 J.3): N-ACTION in, answered at once."""

import logging

from pydicom.dataset import Dataset

from pacs.archive.commitment import CommitmentService
from pacs.errors import PacsError
from pacs.net import status
from pacs.net.association import Association
from pacs.net.commitment_scu import OpenAssociations
from pacs.net.contexts import STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
from pacs.net.dimse import DimseMessage
from pacs.net.handlers import Handler
from pacs.net.identifier import decode_identifier
from pacs.net.status import Service

log = logging.getLogger(__name__)

REQUEST_STORAGE_COMMITMENT = 1


class _Refused(Exception):
    def __init__(self, code: int, comment: str) -> None:
        super().__init__(comment)
        self.code = code


def _references(information: Dataset) -> list[tuple[str, str]]:
    """(SOP Class, SOP Instance) pairs of the Referenced SOP Sequence; refuse a broken one.

    Every refusal is a status PS3.7 10.1.4.1.10 lists for N-ACTION. Missing Attribute is
    not among them: an Action Information without its Transaction UID is an argument
    whose value is inappropriate, Invalid Argument Value (PS3.7 C.5.10). No Such Argument
    (C.5.9) is for information the SCP does not recognise, the opposite case.
    """
    if "TransactionUID" not in information or not str(information.TransactionUID).strip():
        raise _Refused(status.INVALID_ARGUMENT_VALUE, "no Transaction UID (0008,1195)")
    sequence = information.get("ReferencedSOPSequence")
    if not sequence:
        raise _Refused(status.INVALID_ARGUMENT_VALUE, "Referenced SOP Sequence is missing or empty")
    references = []
    for number, item in enumerate(sequence, 1):
        sop_class = str(item.get("ReferencedSOPClassUID", "")).strip()
        sop_instance = str(item.get("ReferencedSOPInstanceUID", "")).strip()
        if not sop_class or not sop_instance:
            raise _Refused(
                status.INVALID_ARGUMENT_VALUE,
                f"item {number} of Referenced SOP Sequence lacks a SOP Class or Instance UID",
            )
        references.append((sop_class, sop_instance))
    return references


def _check_target(request: DimseMessage) -> None:
    command = request.command
    if int(command.get("ActionTypeID", 0) or 0) != REQUEST_STORAGE_COMMITMENT:
        raise _Refused(
            status.NO_SUCH_ACTION_TYPE, f"Action Type ID {command.get('ActionTypeID')} is not 1"
        )
    if str(command.get("RequestedSOPInstanceUID", "")) != STORAGE_COMMITMENT_INSTANCE:
        raise _Refused(
            status.NO_SUCH_SOP_INSTANCE, f"SOP Instance must be {STORAGE_COMMITMENT_INSTANCE}"
        )


def make_commitment_handler(
    service: CommitmentService, open_associations: OpenAssociations
) -> Handler:
    """The N-ACTION handler: validate, record, answer; the worker reports later."""

    async def handle_action(assoc: Association, request: DimseMessage) -> None:
        data = await request.read_data_set()
        elements = {
            "ActionTypeID": int(request.command.get("ActionTypeID", 0) or 0),
            "AffectedSOPInstanceUID": STORAGE_COMMITMENT_INSTANCE,
        }
        try:
            _check_target(request)
            information = decode_identifier(data, request.transfer_syntax)
            references = _references(information)
            open_associations.note(assoc)
            await service.accept(
                str(information.TransactionUID), assoc.agreement.calling_ae_title, references
            )
        except _Refused as exc:
            await assoc.respond(request, exc.code, str(exc), elements=elements)
            return
        except PacsError as exc:
            code = status.for_error(exc, Service.COMMITMENT)
            await assoc.respond(request, code, str(exc), elements=elements)
            return
        await assoc.respond(request, status.SUCCESS, elements=elements)

    return handle_action


__all__ = ["STORAGE_COMMITMENT", "make_commitment_handler"]
