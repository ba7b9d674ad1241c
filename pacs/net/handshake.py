"""Opening an association (PS3.8 7.1): accept one on a new connection, or request one of a peer."""

import asyncio
import logging
import socket
import ssl
from collections.abc import Mapping, Sequence

from pydicom.uid import UID
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.presentation import PresentationContext

from pacs.archive.access import ALL_OPERATIONS, NOTHING, Operation
from pacs.audit.auditor import Alert, Auditor
from pacs.errors import ProtocolError
from pacs.net.association import Association
from pacs.net.negotiation import (
    AcceptorPolicy,
    Agreement,
    Rejection,
    accept,
    build_request,
    check_request,
    read_acceptance,
    too_many_associations,
)
from pacs.net.negotiation_memo import NegotiationMemo
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
from pacs.net.permissions import Gatekeeper, operations_of, refused_contexts_line
from pacs.net.security_alerts import alert, node_at
from pacs.net.timeouts import Timeouts
from pacs.net.tls import (
    describe_failure,
    identity_rejection,
    peer_subject,
    subject_matches,
    tls_refused,
)
from pacs.net.wire import Wire

log = logging.getLogger(__name__)


def set_nodelay(wire: Wire) -> None:
    """Disable Nagle and acknowledge every read at once: DIMSE is request/response, and
    Nagle's algorithm on either side, with the other's delayed ACKs, would hold up every
    message written in more than one piece."""
    sock = wire.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    wire.acknowledge_each_read()


# An A-ASSOCIATE-RQ/AC is a few KB even with hundreds of contexts; more is not a peer we serve.
MAX_ASSOCIATE_PDU = 1024 * 1024


class AssociationFailed(ProtocolError):
    """An association we requested could not be established."""


class AssociationRejected(AssociationFailed):
    """The peer answered our A-ASSOCIATE-RQ with A-ASSOCIATE-RJ."""


# A TLS record's first byte is its content type; 0x16 (handshake) opens a ClientHello.
TLS_HANDSHAKE_RECORD = 0x16


class TlsOnPlainPort(PduError):
    """A TLS ClientHello arrived where an A-ASSOCIATE-RQ was expected."""


def _address(wire: Wire) -> str:
    peer = wire.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if peer else "?"


async def _read_associate_pdu(
    wire: Wire, timeout: float | None, expected: set[PduType]
) -> tuple[int, bytes]:
    """Read one association-phase PDU within the ARTIM timeout; return (type, whole PDU)."""
    async with asyncio.timeout(timeout):
        pdu_type, length = await read_pdu_header(wire.read_exactly)
        if pdu_type == TLS_HANDSHAKE_RECORD and PduType.ASSOCIATE_RQ in expected:
            raise TlsOnPlainPort("a TLS ClientHello on the plain DICOM port")
        if pdu_type not in expected:
            known = pdu_type in PduType._value2member_map_
            reason = AbortReason.UNEXPECTED_PDU if known else AbortReason.UNRECOGNIZED_PDU
            raise PduError(f"PDU type 0x{pdu_type:02X} where {sorted(expected)} expected", reason)
        if length > MAX_ASSOCIATE_PDU:
            raise PduError(f"association PDU of {length} bytes is too long")
        body = await wire.read_exactly(length)
    return pdu_type, frame(pdu_type, body)


async def _refuse(wire: Wire, pdu: bytes, artim: float | None) -> None:
    """Send an A-ASSOCIATE-RJ or A-ABORT, then let the peer close the connection.

    PS3.8 9.2 (AE-8, AA-1, Sta13): the requestor closes the connection on receiving
    it; the acceptor closes it only when ARTIM expires first.
    """
    try:
        wire.write(pdu)
        async with asyncio.timeout(artim):
            await wire.drain()
            await wire.discard_until_eof()  # whatever the peer still sends is of no interest
    except (ConnectionError, TimeoutError):
        pass
    wire.close()


async def accept_association(
    wire: Wire,
    policy: AcceptorPolicy,
    timeouts: Timeouts,
    *,
    association_limit: int | None = None,
    gatekeeper: Gatekeeper | None = None,
    bound_subjects: Mapping[str, str] | None = None,
    auditor: Auditor | None = None,
    memo: NegotiationMemo | None = None,
) -> Association | None:
    """Negotiate a new connection as acceptor; None when it was rejected or abandoned.

    `association_limit` is set when the server is already full: the request is
    then answered with a transient "local limit exceeded" rejection. `gatekeeper`
    decides what the calling AE may negotiate (None: everything). `bound_subjects`:
    calling AE titles that must present these certificate subjects. `memo` keeps recent
    requests' negotiations (None: each is negotiated afresh).
    """
    set_nodelay(wire)
    memo = memo or NegotiationMemo(size=0)
    address = _address(wire)
    try:
        _, data = await _read_associate_pdu(wire, timeouts.acse, {PduType.ASSOCIATE_RQ})
        rq = memo.decode(data)
    except TimeoutError:
        log.warning("%s: no A-ASSOCIATE-RQ within %ss, closing", address, timeouts.acse)
        wire.close()
        return None
    except (asyncio.IncompleteReadError, ConnectionError):
        log.info("%s: connection closed before association", address)
        wire.close()
        return None
    except TlsOnPlainPort as exc:
        tls_refused(address, str(exc), auditor)
        wire.close()  # an A-ABORT would mean nothing to a TLS client
        return None
    except PduError as exc:
        log.warning("%s: aborting: %s", address, exc)
        alert(auditor, node_at(address), Alert.ASSOCIATION_REFUSED, f"aborted: {exc}")
        abort = encode_abort(AbortSource.SERVICE_PROVIDER, exc.reason)
        await _refuse(wire, abort, timeouts.acse)
        return None
    rejection, admitted = _judge(
        rq, policy, address, association_limit, gatekeeper, auditor=auditor
    )
    if rejection is None and bound_subjects:
        subject = peer_subject(wire)
        calling = rq.calling_ae_title.strip()
        if rejection := identity_rejection(calling, subject, bound_subjects, address, auditor):
            admitted = NOTHING  # tls_refused has logged and audited it
    if rejection is not None:
        if admitted:  # else permissions.refuse_permission has logged it
            log.warning(
                "association from %s@%s to %s rejected: %s",
                rq.calling_ae_title.strip(),
                address,
                rq.called_ae_title.strip(),
                rejection.why,
            )
        await _refuse(wire, rejection.encode(), timeouts.acse)
        return None
    agreement, ac = _accept(
        rq, data, policy, gatekeeper, admitted, address=address, auditor=auditor, memo=memo
    )
    wire.write(ac)
    association = Association(wire, agreement, timeouts, is_requestor=False)
    log.info(
        "association from %s@%s to %s accepted: %d of %d contexts%s",
        agreement.calling_ae_title,
        address,
        agreement.called_ae_title,
        len(agreement.accepted),
        len(agreement.accepted) + len(agreement.rejected),
        _tls_note(wire, association.peer_certificate_subject),
    )
    return association


def _tls_note(wire: Wire, subject: str | None) -> str:
    """What the opening line adds for a TLS association: its version and peer subject."""
    ssl_object = wire.get_extra_info("ssl_object")
    if ssl_object is None:
        return ""
    return f", {ssl_object.version()}" + (f" as {subject}" if subject else "")


async def _connect(
    host: str,
    port: int,
    called_ae_title: str,
    timeouts: Timeouts,
    tls: ssl.SSLContext | None,
    *,
    auditor: Auditor | None,
) -> Wire:
    """Connect, then (with `tls`) complete the TLS handshake; failures of the latter are
    TLS refusals, whatever the peer did (alert, reset, silence)."""
    where = f"{called_ae_title}@{host}:{port}"
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeouts.acse):
            transport, wire = await loop.create_connection(Wire, host, port)
    except (OSError, TimeoutError) as exc:
        raise AssociationFailed(f"cannot connect to {where}: {exc}") from exc
    if tls is None:
        return wire
    try:
        async with asyncio.timeout(timeouts.acse):
            secure = await loop.start_tls(transport, wire, tls, server_hostname=host)
    except (OSError, TimeoutError) as exc:
        transport.abort()
        reason = describe_failure(exc)
        tls_refused(where, reason, auditor)
        raise AssociationFailed(f"cannot connect to {where} over TLS: {reason}") from exc
    assert secure is not None
    wire.connection_made(secure)
    return wire


def _check_subject(wire: Wire, where: str, wanted: str, auditor: Auditor | None) -> None:
    """Close the connection unless the peer's certificate carries the configured subject."""
    subject = peer_subject(wire)
    if not subject_matches(subject, wanted):
        wire.close()
        reason = f"certificate subject {subject!r} is not the configured {wanted!r}"
        tls_refused(where, reason, auditor)
        raise AssociationFailed(f"{where}: {reason}")


def _judge(
    rq: A_ASSOCIATE_RQ,
    policy: AcceptorPolicy,
    address: str,
    association_limit: int | None,
    gatekeeper: Gatekeeper | None,
    *,
    auditor: Auditor | None,
) -> tuple[Rejection | None, frozenset[Operation]]:
    """Why the request must be rejected (None: negotiate it), and what the caller may do.

    Refusals other than a full server are Security Alerts in the audit trail.
    """
    peer = node_at(address, rq.calling_ae_title)
    if (rejection := check_request(rq, policy)) is not None:
        why = f"{rq.called_ae_title.strip()} refused {peer.ae_title}: {rejection.why}"
        alert(auditor, peer, Alert.ASSOCIATION_REFUSED, why)
        return rejection, ALL_OPERATIONS
    admitted = ALL_OPERATIONS
    if gatekeeper is not None:
        admission = gatekeeper.admit(rq.calling_ae_title, address)
        if isinstance(admission, Rejection):
            alert(auditor, peer, Alert.PERMISSION_DENIED, f"association: {admission.why}")
            return admission, NOTHING
        admitted = admission
    if association_limit is not None:
        return too_many_associations(association_limit), admitted
    return None, admitted


def _accept(
    rq: A_ASSOCIATE_RQ,
    pdu: bytes,
    policy: AcceptorPolicy,
    gatekeeper: Gatekeeper | None,
    admitted: frozenset[Operation],
    *,
    address: str,
    auditor: Auditor | None,
    memo: NegotiationMemo,
) -> tuple[Agreement, bytes]:
    """Negotiate what the caller proposed, rejecting the contexts it has no permission for."""
    if gatekeeper is None:
        admitted = ALL_OPERATIONS
    remembered = memo.recall(pdu, policy, admitted)
    if remembered is None:
        remembered = _negotiate(rq, policy, gatekeeper, admitted)
        memo.keep(pdu, policy, admitted, *remembered)
    agreement, ac = remembered
    if admitted == ALL_OPERATIONS:
        return agreement, ac
    # User rejections: no permission, or a role the tailored contexts do not offer.
    refused = {UID(str(cx.abstract_syntax)) for cx in agreement.rejected if cx.result == 0x01}
    if refused:
        why = refused_contexts_line(rq.calling_ae_title, address, admitted, refused)
        alert(auditor, node_at(address, rq.calling_ae_title), Alert.PERMISSION_DENIED, why)
    return agreement, ac


def _negotiate(
    rq: A_ASSOCIATE_RQ,
    policy: AcceptorPolicy,
    gatekeeper: Gatekeeper | None,
    admitted: frozenset[Operation],
) -> tuple[Agreement, bytes]:
    if gatekeeper is None or admitted == ALL_OPERATIONS:
        return accept(rq, policy)

    def permitted(cx: PresentationContext) -> bool:
        return operations_of(cx) <= admitted

    return accept(rq, gatekeeper.tailor(policy, admitted), permitted)


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
    tls: ssl.SSLContext | None = None,
    certificate_subject: str | None = None,
    auditor: Auditor | None = None,
) -> Association:
    """Open an association to a peer as requestor; raise AssociationFailed when that fails.

    `purpose` ("C-MOVE from ...") goes into the association's opening and closing lines.
    With `tls`, the connection is TLS and, given `certificate_subject`, the peer's
    certificate must carry that subject.
    """
    proposed = number_contexts(contexts)
    wire = await _connect(host, port, called_ae_title, timeouts, tls, auditor=auditor)
    if tls is not None and certificate_subject is not None:
        where = f"{called_ae_title}@{host}:{port}"
        _check_subject(wire, where, certificate_subject, auditor)
    set_nodelay(wire)
    wire.write(build_request(calling_ae_title, called_ae_title, proposed, max_pdu_length))
    expected = {PduType.ASSOCIATE_AC, PduType.ASSOCIATE_RJ, PduType.ABORT}
    try:
        pdu_type, data = await _read_associate_pdu(wire, timeouts.acse, expected)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, PduError) as exc:
        wire.close()
        raise AssociationFailed(f"{called_ae_title}@{host}:{port}: no acceptance: {exc!r}") from exc
    if pdu_type == PduType.ASSOCIATE_RJ:
        rj = A_ASSOCIATE_RJ()
        rj.decode(data)
        wire.close()
        raise AssociationRejected(
            f"{called_ae_title}@{host}:{port} rejected the association: "
            f"{rj.result_str}, {rj.source_str}, {rj.reason_str}"
        )
    if pdu_type == PduType.ABORT:
        wire.close()
        source, reason = decode_abort(data[6:])
        raise AssociationFailed(f"{called_ae_title}@{host}:{port} aborted ({source}, {reason})")
    ac = A_ASSOCIATE_AC()
    ac.decode(data)
    agreement = read_acceptance(ac, proposed, calling_ae_title)
    if not agreement.accepted:
        wire.write(encode_abort(AbortSource.SERVICE_USER))
        wire.close()  # the transport sends what is buffered, then closes
        raise AssociationRejected(
            f"{called_ae_title}@{host}:{port} accepted no presentation context"
        )
    association = Association(wire, agreement, timeouts, is_requestor=True, purpose=purpose)
    log.info(
        "%s accepted: %d of %d contexts",
        association.label,
        len(agreement.accepted),
        len(agreement.accepted) + len(agreement.rejected),
    )
    return association
