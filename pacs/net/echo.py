"""C-ECHO (PS3.7 9.1.5): the Verification SCP handler and the SCU call."""

from pacs.errors import ProtocolError
from pacs.net import status
from pacs.net.association import Association
from pacs.net.contexts import VERIFICATION
from pacs.net.dimse import Command, DimseMessage


async def handle_echo(assoc: Association, request: DimseMessage) -> None:
    """Answer C-ECHO-RQ with Success: the association and this AE are alive."""
    await assoc.respond(request, status.SUCCESS)


async def echo(assoc: Association) -> int:
    """Send C-ECHO-RQ on an accepted Verification context; return the response status."""
    context_id = assoc.context_for(VERIFICATION)
    if context_id is None:
        raise ProtocolError(f"{assoc.peer}: Verification was not accepted")
    command = {"CommandField": Command.C_ECHO_RQ, "AffectedSOPClassUID": VERIFICATION}
    response = await assoc.request_final(context_id, command)
    return response.status
