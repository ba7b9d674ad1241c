"""C-FIND SCP (PS3.4 C.4.1): identifier in, one Pending response per match, final status out."""

import logging
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID

from pacs.archive.query import QueryService
from pacs.audit.auditor import Auditor
from pacs.audit.events import Outcome, QueryObject
from pacs.dicom.json_encoding import encode_json
from pacs.dicom.matching import InformationModel, parse_identifier
from pacs.errors import InvalidIdentifier, PacsError
from pacs.net import status
from pacs.net.association import Association
from pacs.net.audit_peer import peer_node
from pacs.net.dimse import DimseMessage
from pacs.net.handlers import Handler
from pacs.net.identifier import decode_identifier, encode_identifier
from pacs.net.status import Service

log = logging.getLogger(__name__)

FIND_MODELS = [model.value for model in InformationModel]


def response_encoder(transfer_syntax: str) -> Callable[[dict[str, Any]], bytes]:
    """How to encode the response identifiers (DICOM JSON) of one request: json_encoding in
    little-endian syntaxes, pydicom for what it leaves and for big-endian or deflated ones."""
    syntax = UID(transfer_syntax)
    direct = syntax.is_little_endian and not syntax.is_deflated

    def encode_response(response: dict[str, Any]) -> bytes:
        data = encode_json(response, syntax.is_implicit_VR) if direct else None
        if data is None:
            data = encode_identifier(Dataset.from_json(response), transfer_syntax)
        return data

    return encode_response


def make_find_handler(service: QueryService, auditor: Auditor) -> Handler:
    """The C-FIND handler bound to this archive's query service; each query is audited."""

    async def handle_find(assoc: Association, request: DimseMessage) -> None:
        data = await request.read_data_set()
        audited = QueryObject(request.abstract_syntax, request.transfer_syntax, data)
        try:
            identifier = decode_identifier(data, request.transfer_syntax)
            query = parse_identifier(identifier, InformationModel(request.abstract_syntax))
        except InvalidIdentifier as exc:
            auditor.query(peer_node(assoc), audited, Outcome.MINOR_FAILURE)
            await assoc.respond(request, status.for_error(exc, Service.FIND), str(exc))
            return
        auditor.query(peer_node(assoc), audited)
        encode_response = response_encoder(request.transfer_syntax)
        matches = 0

        def detail() -> str:
            return f"{query.level} level, {matches} match{'' if matches == 1 else 'es'}"

        try:
            async with aclosing(service.find(query)) as pages:
                async for page in pages:
                    # A C-CANCEL is looked for once per page, as the page's responses go
                    # out together: Pending responses may precede the Cancel status.
                    if assoc.cancelled(request.message_id):
                        await assoc.respond(request, status.CANCEL, detail=detail())
                        return
                    await assoc.respond_pending(request, [encode_response(m) for m in page])
                    matches += len(page)
        except PacsError as exc:
            code = status.for_error(exc, Service.FIND)
            await assoc.respond(request, code, str(exc), detail=detail())
            return
        await assoc.respond(request, status.SUCCESS, detail=detail())

    return handle_find
