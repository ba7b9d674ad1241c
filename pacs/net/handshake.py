"""Opening an association (PS3.8 7.1): accept one on a new connection, or request one of a peer."""

import asyncio
import logging
from collections.abc import Sequence

from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.presentation import PresentationContext

from pacs.audit.auditor import Alert, Auditor
from pacs.audit.events import Node
from pacs.errors import ProtocolError
from pacs.net.association import Association, Timeouts, set_nodelay
from pacs.net.negotiation import (
    AcceptorPolicy,
    Rejection,
    accept,
    build_request,
    check_request,
    read_acceptance,
    too_many_associations,
)
from pacs.net.pdu import (
    AbortReason,
    AbortSource,
    PduError,
    PduType,
    decode_abort,
    encode_abort,
    frame,
    read_pdu_header,
)

log = logging.getLogger(__name__)

# An A-ASSOCIATE-RQ/AC is a few KB even with hundreds of contexts; more is not a peer we serve.
MAX_ASSOCIATE_PDU = 1024 * 1024


class AssociationFailed(ProtocolError):
    """An association we requested could not be established."""


class AssociationRejected(AssociationFailed):
    """The peer answered our A-ASSOCIATE-RQ with A-ASSOCIATE-RJ."""


def _address(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if peer else "?"


async def _read_associate_pdu(
    reader: asyncio.StreamReader, timeout: float | None, expected: set[PduType]
) -> tuple[int, bytes]:
    """Read one association-phase PDU within the ARTIM timeout; return (type, whole PDU)."""
    async with asyncio.timeout(timeout):
        pdu_type, length = await read_pdu_header(reader.readexactly)
        if pdu_type not in expected:
            known = pdu_type in PduType._value2member_map_
            reason = AbortReason.UNEXPECTED_PDU if known else AbortReason.UNRECOGNIZED_PDU
            raise PduError(f"PDU type 0x{pdu_type:02X} where {sorted(expected)} expected", reason)
        if length > MAX_ASSOCIATE_PDU:
            raise PduError(f"association PDU of {length} bytes is too long")
        body = await reader.readexactly(length)
    return pdu_type, frame(pdu_type, body)


async def _refuse(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pdu: bytes, artim: float | None
) -> None:
    """Send an A-ASSOCIATE-RJ or A-ABORT, then let the peer close the connection.

    PS3.8 9.2 (AE-8, AA-1, Sta13): the requestor closes the connection on receiving
    it; the acceptor closes it only when ARTIM expires first.
    """
    try:
        writer.write(pdu)
        async with asyncio.timeout(artim):
            await writer.drain()
            while await reader.read(MAX_ASSOCIATE_PDU):
                pass  # whatever the peer still sends is of no interest now
    except (ConnectionError, TimeoutError):
        pass
    writer.close()


async def accept_association(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    policy: AcceptorPolicy,
    timeouts: Timeouts,
    *,
    association_limit: int | None = None,
    auditor: Auditor | None = None,
) -> Association | None:
    """Negotiate a new connection as acceptor; None when it was rejected or abandoned.

    `association_limit` is set when the server is already full: the request is
    then answered with a transient "local limit exceeded" rejection.
    """
    set_nodelay(writer)
    address = _address(writer)
    try:
        _, data = await _read_associate_pdu(reader, timeouts.acse, {PduType.ASSOCIATE_RQ})
        rq = A_ASSOCIATE_RQ()
        try:
            rq.decode(data)
        except Exception as exc:
            raise PduError(f"undecodable A-ASSOCIATE-RQ: {exc}") from exc
    except TimeoutError:
        log.warning("%s: no A-ASSOCIATE-RQ within %ss, closing", address, timeouts.acse)
        writer.close()
        return None
    except (asyncio.IncompleteReadError, ConnectionError):
        log.info("%s: connection closed before association", address)
        writer.close()
        return None
    except PduError as exc:
        log.warning("%s: aborting: %s", address, exc)
        if auditor is not None:
            why = f"aborted before negotiation: {exc}"
            auditor.security_alert(
                Node("", address.rpartition(":")[0]), Alert.ASSOCIATION_REFUSED, why
            )
        abort = encode_abort(AbortSource.SERVICE_PROVIDER, exc.reason)
        await _refuse(reader, writer, abort, timeouts.acse)
        return None
    rejection: Rejection | None = check_request(rq, policy)
    if rejection is not None and auditor is not None:
        peer = Node(rq.calling_ae_title.strip(), address.rpartition(":")[0])
        why = f"{rq.called_ae_title.strip()} refused {peer.ae_title}: {rejection.why}"
        auditor.security_alert(peer, Alert.ASSOCIATION_REFUSED, why)
    if rejection is None and association_limit is not None:
        rejection = too_many_associations(association_limit)
    if rejection is not None:
        log.warning(
            "association from %s@%s to %s rejected: %s",
            rq.calling_ae_title.strip(),
            address,
            rq.called_ae_title.strip(),
            rejection.why,
        )
        await _refuse(reader, writer, rejection.encode(), timeouts.acse)
        return None
    agreement, ac = accept(rq, policy)
    writer.write(ac)
    log.info(
        "association from %s@%s to %s accepted: %d of %d contexts",
        agreement.calling_ae_title,
        address,
        agreement.called_ae_title,
        len(agreement.accepted),
        len(agreement.accepted) + len(agreement.rejected),
    )
    return Association(reader, writer, agreement, timeouts, is_requestor=False)


def number_contexts(contexts: Sequence[PresentationContext]) -> list[PresentationContext]:
    """Give proposed contexts the odd IDs 1, 3, 5... that PS3.8 9.3.2.2 requires."""
    for index, cx in enumerate(contexts):
        cx.context_id = 2 * index + 1
    return list(contexts)


async def request_association(
    host: str,
    port: int,
    *,
    calling_ae_title: str,
    called_ae_title: str,
    contexts: Sequence[PresentationContext],
    timeouts: Timeouts,
    max_pdu_length: int,
    purpose: str = "",
) -> Association:
    """Open an association to a peer as requestor; raise AssociationFailed when that fails.

    `purpose` ("C-MOVE from ...") goes into the association's opening and closing lines.
    """
    proposed = number_contexts(contexts)
    try:
        async with asyncio.timeout(timeouts.acse):
            reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        raise AssociationFailed(
            f"cannot connect to {called_ae_title}@{host}:{port}: {exc}"
        ) from exc
    set_nodelay(writer)
    writer.write(build_request(calling_ae_title, called_ae_title, proposed, max_pdu_length))
    expected = {PduType.ASSOCIATE_AC, PduType.ASSOCIATE_RJ, PduType.ABORT}
    try:
        pdu_type, data = await _read_associate_pdu(reader, timeouts.acse, expected)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, PduError) as exc:
        writer.close()
        raise AssociationFailed(f"{called_ae_title}@{host}:{port}: no acceptance: {exc!r}") from exc
    if pdu_type == PduType.ASSOCIATE_RJ:
        rj = A_ASSOCIATE_RJ()
        rj.decode(data)
        writer.close()
        raise AssociationRejected(
            f"{called_ae_title}@{host}:{port} rejected the association: "
            f"{rj.result_str}, {rj.source_str}, {rj.reason_str}"
        )
    if pdu_type == PduType.ABORT:
        writer.close()
        source, reason = decode_abort(data[6:])
        raise AssociationFailed(f"{called_ae_title}@{host}:{port} aborted ({source}, {reason})")
    ac = A_ASSOCIATE_AC()
    ac.decode(data)
    agreement = read_acceptance(ac, proposed, calling_ae_title)
    if not agreement.accepted:
        writer.write(encode_abort(AbortSource.SERVICE_USER))
        writer.close()  # the transport sends what is buffered, then closes
        raise AssociationRejected(
            f"{called_ae_title}@{host}:{port} accepted no presentation context"
        )
    association = Association(
        reader, writer, agreement, timeouts, is_requestor=True, purpose=purpose
    )
    log.info(
        "%s accepted: %d of %d contexts",
        association.label,
        len(agreement.accepted),
        len(agreement.accepted) + len(agreement.rejected),
    )
    return association
