"""Permissions at the DICOM edge: the access policy asked at association time, refusals logged.

An AE allowed nothing gets A-ASSOCIATE-RJ (calling AE title not recognized, PS3.8
9.3.4); an operation it may not perform has its presentation contexts rejected
(result 1, user rejection, PS3.8 9.3.3.2), so the SCU learns at association time;
a C-MOVE to a destination it may not use gets a failure status from move_scp.
Every refusal goes through `refuse_permission`.
"""

import dataclasses
import logging
from collections.abc import Iterable, Sequence

from pydicom.uid import UID
from pynetdicom.presentation import PresentationContext

from pacs.archive.access import AccessPolicy, Operation
from pacs.net.contexts import (
    QUERY_RETRIEVE_FIND,
    QUERY_RETRIEVE_GET,
    QUERY_RETRIEVE_MOVE,
    STORAGE_COMMITMENT,
    VERIFICATION,
)
from pacs.net.negotiation import AcceptorPolicy, Rejection, RejectResult, RejectSource

log = logging.getLogger(__name__)

CALLING_AE_NOT_RECOGNIZED = 0x03  # A-ASSOCIATE-RJ reason, source service-user (PS3.8 9.3.4)

_OPERATION_OF: dict[str, Operation] = {
    str(VERIFICATION): Operation.ECHO,
    str(STORAGE_COMMITMENT): Operation.COMMIT,
    **{uid: Operation.FIND for uid in QUERY_RETRIEVE_FIND},
    **{uid: Operation.MOVE for uid in QUERY_RETRIEVE_MOVE},
    **{uid: Operation.GET for uid in QUERY_RETRIEVE_GET},
}


def refuse_permission(calling_ae_title: str, address: str, what: str) -> None:
    """Log a refusal on permission grounds: the one place every such refusal passes."""
    log.warning("permission refused: %s@%s %s", calling_ae_title.strip(), address, what)


def operations_of(cx: PresentationContext) -> frozenset[Operation]:
    """What an accepted context lets the requestor do, given the roles negotiated for it.

    Any other abstract syntax is a storage SOP Class: with us as SCP the requestor
    stores; with us as SCU (role selection) it receives C-GET sub-operations.
    """
    operation = _OPERATION_OF.get(str(cx.abstract_syntax))
    if operation is not None:
        return frozenset({operation})
    granted = set()
    if cx.as_scp:
        granted.add(Operation.STORE)
    if cx.as_scu:
        granted.add(Operation.GET)
    return frozenset(granted)


def offered(
    contexts: Sequence[PresentationContext], allowed: frozenset[Operation]
) -> list[PresentationContext]:
    """Our acceptable contexts for a requestor allowed `allowed`.

    Storage contexts offer the requestor the SCU role only with `store` and the
    SCP role only with `get`, so role selection cannot widen what it may do.
    """
    result = []
    for cx in contexts:
        if str(cx.abstract_syntax) in _OPERATION_OF or cx.scu_role is None:
            result.append(cx)
            continue
        tailored = PresentationContext()
        tailored.abstract_syntax = cx.abstract_syntax
        tailored.transfer_syntax = list(cx.transfer_syntax)
        tailored.scu_role = Operation.STORE in allowed
        tailored.scp_role = Operation.GET in allowed
        result.append(tailored)
    return result


def not_recognized(calling_ae_title: str, address: str, outside_hosts: bool) -> Rejection:
    """The A-ASSOCIATE-RJ for a calling AE allowed nothing, logged as a refusal."""
    why = "connects from a host not in its hosts" if outside_hosts else "is allowed nothing"
    refuse_permission(calling_ae_title, address, f"association rejected: {why}")
    return Rejection(
        RejectResult.PERMANENT,
        RejectSource.SERVICE_USER,
        CALLING_AE_NOT_RECOGNIZED,
        f"calling AE title {calling_ae_title.strip()!r} not recognized ({why})",
    )


def describe(operations: Iterable[Operation]) -> str:
    return ", ".join(sorted(operations)) or "nothing"


class Gatekeeper:
    """The current access policy; replaced as a whole when the configuration is reloaded.

    An association is judged by the policy in force when it is negotiated and keeps
    what it negotiated; a C-MOVE destination is judged when the C-MOVE arrives.
    """

    def __init__(self, policy: AccessPolicy) -> None:
        self.policy = policy
        # Building hundreds of storage contexts per association would cost; a few sets recur.
        self._tailored: dict[frozenset[Operation], tuple[AcceptorPolicy, AcceptorPolicy]] = {}

    def tailor(self, policy: AcceptorPolicy, allowed: frozenset[Operation]) -> AcceptorPolicy:
        """`policy` with its storage contexts' roles limited to what `allowed` permits."""
        cached = self._tailored.get(allowed)
        if cached is not None and cached[0] is policy:
            return cached[1]
        tailored = dataclasses.replace(policy, contexts=offered(policy.contexts, allowed))
        self._tailored[allowed] = (policy, tailored)  # at most one per subset of Operation
        return tailored

    def admit(self, calling_ae_title: str, address: str) -> frozenset[Operation] | Rejection:
        """The operations the caller may negotiate, or the rejection when it may do nothing."""
        host = address.rsplit(":", 1)[0].strip("[]")
        operations = self.policy.operations_for(calling_ae_title, host)
        if not operations:
            outside = self.policy.outside_hosts(calling_ae_title, host)
            return not_recognized(calling_ae_title, address, outside)
        return operations

    def may_move_to(self, requester: str, destination: str) -> bool:
        return self.policy.may_move_to(requester, destination)


def refused_contexts_line(
    calling_ae_title: str, address: str, allowed: frozenset[Operation], wanted: set[UID]
) -> str:
    """Log the contexts rejected for want of permission, once per association; return why."""
    operations = {_OPERATION_OF.get(str(uid), Operation.STORE) for uid in wanted}
    why = (
        f"may not {describe(operations - allowed) or 'take the role asked'}: "
        f"{len(wanted)} presentation context{'s' if len(wanted) != 1 else ''} rejected "
        f"(allowed: {describe(allowed)})"
    )
    refuse_permission(calling_ae_title, address, why)
    return why
