"""C-GET SCP (PS3.4 C.4.3): send what the identifier names back on the requester's association."""

from pacs.archive.deidentification import Deidentifications
from pacs.archive.retrieve import RetrieveService
from pacs.audit.auditor import Auditor
from pacs.dicom.selection import parse_selection
from pacs.errors import PacsError
from pacs.net import deidentified_transfer, status
from pacs.net.association import Association
from pacs.net.audit_peer import peer_node
from pacs.net.dimse import DimseMessage
from pacs.net.handlers import Handler
from pacs.net.identifier import decode_identifier
from pacs.net.status import Service
from pacs.net.suboperations import Counts, describe_selection, finish, report_pending, send_all


def make_get_handler(
    retrieve: RetrieveService,
    auditor: Auditor,
    deidentifications: Deidentifications | None = None,
) -> Handler:
    """The C-GET handler: sub-operations use the storage contexts the requester accepted as SCP.

    A requester that is a peer with a de-identification profile gets de-identified instances.
    """

    async def handle_get(assoc: Association, request: DimseMessage) -> None:
        detail = f"to {assoc.agreement.calling_ae_title}"  # the requester is the destination
        try:
            identifier = decode_identifier(await request.read_data_set(), request.transfer_syntax)
            selection = parse_selection(identifier, request.abstract_syntax)
            detail += f", {describe_selection(selection)}"
            total, _ = await retrieve.summary(selection)
        except PacsError as exc:
            code = status.for_error(exc, Service.RETRIEVE)
            await assoc.respond(request, code, str(exc), detail=detail)
            return
        counts = Counts(remaining=total)
        requester = peer_node(assoc)
        transfer = auditor.transfer(requester, requester)
        calling = assoc.agreement.calling_ae_title
        deidentification = deidentified_transfer.start(deidentifications, calling)
        try:
            cancelled = await send_all(
                assoc,
                retrieve,
                selection,
                counts,
                cancelled=lambda: assoc.cancelled(request.message_id),
                progress=report_pending(assoc, request),
                transfer=transfer,
                deidentification=deidentification,
            )
        finally:
            # The requester is the de-identified recipient: its failed list names the UIDs
            # it would have received, not the originals.
            counts.failed_uids = deidentified_transfer.as_sent(deidentification, counts.failed_uids)
            await deidentified_transfer.finish(deidentifications, deidentification)
            how = deidentified_transfer.describe(deidentification)
            transfer.finished(counts.failed, f"C-GET {counts.describe()}{how}")
        await finish(assoc, request, counts, cancelled, detail + how)

    return handle_get
