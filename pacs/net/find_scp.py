"""C-FIND SCP (PS3.4 C.4.1): identifier in, one Pending response per match, final status out."""

import logging
from collections.abc import Callable
from contextlib import aclosing
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.dsutils import decode, encode

from pacs.archive.query import QueryService
from pacs.audit.auditor import Auditor
from pacs.audit.events import Outcome, QueryObject
from pacs.dicom.json_encoding import encode_json
from pacs.dicom.matching import InformationModel, is_zero_length, parse_identifier
from pacs.errors import InvalidIdentifier, PacsError
from pacs.net import status
from pacs.net.association import Association
from pacs.net.audit_peer import peer_node
from pacs.net.dimse import DimseMessage
from pacs.net.handlers import Handler

log = logging.getLogger(__name__)

FIND_MODELS = [model.value for model in InformationModel]


def decode_identifier(data: bytes, transfer_syntax: str) -> Dataset:
    """Decode an identifier; raise InvalidIdentifier when it is not a data set."""
    syntax = UID(transfer_syntax)
    try:
        identifier = decode(
            BytesIO(data), syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated
        )
        # Values decode lazily: fail here, not halfway through. pydicom takes a zero-length
        # element for a deferred read and converts it unless told to keep it raw, which
        # for return keys is work thrown away.
        for tag in identifier.keys():  # noqa: SIM118
            if not is_zero_length(identifier.get_item(tag, keep_deferred=True)):
                identifier[tag]
    except Exception as exc:
        raise InvalidIdentifier(f"the identifier cannot be decoded: {exc}") from exc
    return identifier


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


def encode_identifier(identifier: Dataset, transfer_syntax: str) -> bytes:
    syntax = UID(transfer_syntax)
    data = encode(identifier, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
    if data is None:
        raise PacsError("a response identifier could not be encoded")
    return bytes(data)


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
            await assoc.respond(request, status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, str(exc))
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
        except InvalidIdentifier as exc:
            code = status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
            await assoc.respond(request, code, str(exc), detail=detail())
            return
        except PacsError as exc:
            await assoc.respond(request, status.UNABLE_TO_PROCESS, str(exc), detail=detail())
            return
        await assoc.respond(request, status.SUCCESS, detail=detail())

    return handle_find
