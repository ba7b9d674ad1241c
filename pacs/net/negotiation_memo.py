"""Association requests remembered by their bytes: decoded once, negotiated once.

A modality opens every association with the same A-ASSOCIATE-RQ, and decoding it and
negotiating its contexts (well over a hundred in storescu's default proposal) is most
of what opening an association costs. The same bytes, under the same acceptor policy
and the same permitted operations, always decode and negotiate the same way, so the
outcome is kept (a bounded number of recent requests) and each association gets a
copy of the agreement of its own.
"""

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TypeVar

from pynetdicom.pdu import A_ASSOCIATE_RQ

from pacs.archive.access import Operation
from pacs.net.negotiation import AcceptorPolicy, Agreement
from pacs.net.pdu import PduError

DEFAULT_SIZE = 16

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Negotiated:
    policy: AcceptorPolicy  # compared by identity: a reload builds a new one
    agreement: Agreement
    ac: bytes


class NegotiationMemo:
    """Recent requests' decodings and negotiations; used from the event loop only."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._requests: OrderedDict[bytes, A_ASSOCIATE_RQ] = OrderedDict()
        self._outcomes: OrderedDict[tuple[bytes, frozenset[Operation]], _Negotiated] = OrderedDict()

    def decode(self, pdu: bytes) -> A_ASSOCIATE_RQ:
        """The decoded A-ASSOCIATE-RQ (callers only read it); PduError when undecodable."""
        rq = self._requests.get(pdu)
        if rq is not None:
            self._requests.move_to_end(pdu)
            return rq
        rq = A_ASSOCIATE_RQ()
        try:
            rq.decode(pdu)
        except Exception as exc:
            raise PduError(f"undecodable A-ASSOCIATE-RQ: {exc}") from exc
        self._remember(self._requests, pdu, rq)
        return rq

    def recall(
        self, pdu: bytes, policy: AcceptorPolicy, admitted: frozenset[Operation]
    ) -> tuple[Agreement, bytes] | None:
        """The agreement (a fresh copy) and A-ASSOCIATE-AC negotiated before, if any."""
        outcome = self._outcomes.get((pdu, admitted))
        if outcome is None or outcome.policy is not policy:
            return None
        self._outcomes.move_to_end((pdu, admitted))
        return _copy(outcome.agreement), outcome.ac

    def keep(
        self,
        pdu: bytes,
        policy: AcceptorPolicy,
        admitted: frozenset[Operation],
        agreement: Agreement,
        ac: bytes,
    ) -> None:
        """Remember what `pdu` negotiated to under `policy` for a caller admitted `admitted`."""
        negotiated = _Negotiated(policy, _copy(agreement), ac)
        self._remember(self._outcomes, (pdu, admitted), negotiated)

    def _remember(self, table: OrderedDict[K, V], key: K, value: V) -> None:
        table[key] = value
        if len(table) > self._size:
            table.popitem(last=False)


def _copy(agreement: Agreement) -> Agreement:
    # The contexts themselves are never changed after negotiation; the containers are
    # the association's own.
    return replace(agreement, accepted=dict(agreement.accepted), rejected=list(agreement.rejected))
