"""Association negotiation (PS3.8 7.1, PS3.7 D.3.3) on pynetdicom's PDU and presentation codecs.

Pure functions over decoded PDUs: what to answer an A-ASSOCIATE-RQ, and what a
peer's A-ASSOCIATE-AC means for a request we sent. No I/O.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from pydicom.uid import UID
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import (
    PresentationContext,
    negotiate_as_acceptor,
    negotiate_as_requestor,
)

from pacs.dicom.identity import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

APPLICATION_CONTEXT_NAME = UID("1.2.840.10008.3.1.1.1")


class RejectResult(IntEnum):
    PERMANENT = 0x01
    TRANSIENT = 0x02


class RejectSource(IntEnum):
    SERVICE_USER = 0x01
    SERVICE_PROVIDER_ACSE = 0x02
    SERVICE_PROVIDER_PRESENTATION = 0x03


@dataclass(frozen=True, slots=True)
class Rejection:
    """An A-ASSOCIATE-RJ to send (PS3.8 9.3.4): result, source, reason and why, for the log."""

    result: RejectResult
    source: RejectSource
    reason: int
    why: str

    def encode(self) -> bytes:
        primitive = A_ASSOCIATE()
        primitive.result = int(self.result)
        primitive.result_source = int(self.source)
        primitive.diagnostic = self.reason
        return bytes(A_ASSOCIATE_RJ(primitive).encode())


@dataclass(frozen=True, slots=True)
class AcceptorPolicy:
    """What this AE accepts: its title, its limits and its supported contexts."""

    ae_title: str
    check_called_ae_title: bool
    max_pdu_length: int
    contexts: Sequence[PresentationContext]


@dataclass(slots=True)
class Agreement:
    """The outcome of a successful negotiation, as both sides see it."""

    calling_ae_title: str
    called_ae_title: str
    peer_max_pdu_length: int  # 0: no limit
    accepted: dict[int, PresentationContext]
    rejected: list[PresentationContext] = field(default_factory=list)
    peer_implementation: str = ""


def roles_of(primitive: A_ASSOCIATE) -> dict[UID, tuple[bool | None, bool | None]]:
    """SCP/SCU role selection items of an A-ASSOCIATE, by SOP Class UID."""
    return {
        UID(str(item.sop_class_uid)): (item.scu_role, item.scp_role)
        for item in primitive.user_information
        if isinstance(item, SCP_SCU_RoleSelectionNegotiation)
    }


def _user_information(max_pdu_length: int) -> list[Any]:
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = max_pdu_length
    class_uid = ImplementationClassUIDNotification()
    class_uid.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    return [max_length, class_uid, version]


def check_request(rq: A_ASSOCIATE_RQ, policy: AcceptorPolicy) -> Rejection | None:
    """Return why the request must be rejected, or None when it may be negotiated."""
    if rq.protocol_version & 0x01 == 0:
        return Rejection(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_PROVIDER_ACSE,
            0x02,
            f"protocol version {rq.protocol_version} not supported",
        )
    if rq.application_context_name != APPLICATION_CONTEXT_NAME:
        return Rejection(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            0x02,
            f"application context {rq.application_context_name} not supported",
        )
    called = rq.called_ae_title.strip()
    if policy.check_called_ae_title and called != policy.ae_title:
        return Rejection(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            0x07,
            f"called AE title {called!r} is not {policy.ae_title!r}",
        )
    return None


def too_many_associations(limit: int) -> Rejection:
    """The transient rejection for an association over the configured limit."""
    return Rejection(
        RejectResult.TRANSIENT,
        RejectSource.SERVICE_PROVIDER_PRESENTATION,
        0x02,
        f"local limit of {limit} associations reached",
    )


USER_REJECTION = 0x01  # presentation context result (PS3.8 9.3.3.2)


def accept(
    rq: A_ASSOCIATE_RQ,
    policy: AcceptorPolicy,
    permitted: Callable[[PresentationContext], bool] | None = None,
) -> tuple[Agreement, bytes]:
    """Negotiate contexts and roles for a valid request; return the agreement and the AC PDU.

    A context that negotiates but is not `permitted` (with the roles it got) is
    rejected with result 1, user rejection, and loses its role selection reply.
    """
    request = rq.to_primitive()
    results, reply_roles = negotiate_as_acceptor(
        request.presentation_context_definition_list, list(policy.contexts), roles_of(request)
    )
    if permitted is not None:
        for cx in results:
            if cx.result == 0x00 and not permitted(cx):
                cx.result = USER_REJECTION
        kept = {str(cx.abstract_syntax) for cx in results if cx.result == 0x00}
        reply_roles = [role for role in reply_roles if str(role.sop_class_uid) in kept]
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT_NAME
    primitive.calling_ae_title = request.calling_ae_title
    primitive.called_ae_title = request.called_ae_title
    primitive.result = 0x00
    primitive.result_source = 0x01
    primitive.presentation_context_definition_results_list = results
    primitive.user_information = [*_user_information(policy.max_pdu_length), *reply_roles]
    agreement = Agreement(
        calling_ae_title=request.calling_ae_title.strip(),
        called_ae_title=request.called_ae_title.strip(),
        peer_max_pdu_length=request.maximum_length_received or 0,
        accepted={int(cx.context_id or 0): cx for cx in results if cx.result == 0x00},
        rejected=[cx for cx in results if cx.result != 0x00],
        peer_implementation=str(request.implementation_class_uid or ""),
    )
    return agreement, bytes(A_ASSOCIATE_AC(primitive).encode())


def build_request(
    calling_ae_title: str,
    called_ae_title: str,
    contexts: Sequence[PresentationContext],
    max_pdu_length: int,
) -> bytes:
    """Encode an A-ASSOCIATE-RQ; role selection items follow each context's scu/scp_role."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT_NAME
    primitive.calling_ae_title = calling_ae_title
    primitive.called_ae_title = called_ae_title
    primitive.presentation_context_definition_list = list(contexts)
    roles: dict[str, SCP_SCU_RoleSelectionNegotiation] = {}
    for cx in contexts:
        if cx.scu_role is not None or cx.scp_role is not None:
            role = SCP_SCU_RoleSelectionNegotiation()
            role.sop_class_uid = cx.abstract_syntax
            role.scu_role = bool(cx.scu_role)
            role.scp_role = bool(cx.scp_role)
            roles[str(cx.abstract_syntax)] = role
    primitive.user_information = [*_user_information(max_pdu_length), *roles.values()]
    return bytes(A_ASSOCIATE_RQ(primitive).encode())


def read_acceptance(
    ac: A_ASSOCIATE_AC, requested: Sequence[PresentationContext], calling_ae_title: str
) -> Agreement:
    """Interpret an A-ASSOCIATE-AC received for contexts we requested."""
    primitive = ac.to_primitive()
    negotiated = negotiate_as_requestor(
        list(requested),
        primitive.presentation_context_definition_results_list,
        roles_of(primitive),
    )
    return Agreement(
        calling_ae_title=calling_ae_title,
        called_ae_title=primitive.called_ae_title.strip(),
        peer_max_pdu_length=primitive.maximum_length_received or 0,
        accepted={int(cx.context_id or 0): cx for cx in negotiated if cx.result == 0x00},
        rejected=[cx for cx in negotiated if cx.result != 0x00],
        peer_implementation=str(primitive.implementation_class_uid or ""),
    )
