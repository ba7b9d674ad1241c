"""Negotiations remembered by the request's bytes answer exactly as a fresh negotiation."""

import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.pdu import A_ASSOCIATE_RQ

from pacs.archive.access import ALL_OPERATIONS, Operation
from pacs.net.contexts import VERIFICATION, acceptable, proposal
from pacs.net.handshake import number_contexts
from pacs.net.negotiation import AcceptorPolicy, accept, build_request
from pacs.net.negotiation_memo import NegotiationMemo
from pacs.net.pdu import PduError

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
POLICY = AcceptorPolicy(
    ae_title="PACS",
    check_called_ae_title=False,
    max_pdu_length=65536,
    contexts=acceptable([VERIFICATION, CT_IMAGE], [ExplicitVRLittleEndian, ImplicitVRLittleEndian]),
)
ECHO_ONLY = frozenset({Operation.ECHO})


def _pdu(calling: str = "MODALITY") -> bytes:
    contexts = number_contexts([proposal(VERIFICATION), proposal(CT_IMAGE)])
    return build_request(calling, "PACS", contexts, 16384)


def _negotiated(memo: NegotiationMemo, pdu: bytes, policy: AcceptorPolicy = POLICY) -> bytes:
    agreement, ac = accept(memo.decode(pdu), policy)
    memo.keep(pdu, policy, ALL_OPERATIONS, agreement, ac)
    return ac


def test_a_remembered_request_answers_with_the_same_bytes_as_a_fresh_negotiation() -> None:
    memo = NegotiationMemo()
    pdu = _pdu()
    fresh_rq = A_ASSOCIATE_RQ()
    fresh_rq.decode(pdu)
    fresh_agreement, fresh_ac = accept(fresh_rq, POLICY)
    _negotiated(memo, pdu)

    remembered = memo.recall(pdu, POLICY, ALL_OPERATIONS)

    assert remembered is not None
    agreement, ac = remembered
    assert ac == fresh_ac
    assert agreement.calling_ae_title == fresh_agreement.calling_ae_title == "MODALITY"
    assert sorted(agreement.accepted) == sorted(fresh_agreement.accepted)


def test_each_recall_gets_an_agreement_of_its_own() -> None:
    memo = NegotiationMemo()
    pdu = _pdu()
    _negotiated(memo, pdu)
    first = memo.recall(pdu, POLICY, ALL_OPERATIONS)
    second = memo.recall(pdu, POLICY, ALL_OPERATIONS)
    assert first is not None and second is not None

    first[0].accepted.clear()

    assert second[0].accepted
    again = memo.recall(pdu, POLICY, ALL_OPERATIONS)
    assert again is not None and again[0].accepted


def test_other_bytes_other_permissions_or_a_reloaded_policy_are_negotiated_afresh() -> None:
    memo = NegotiationMemo()
    pdu = _pdu()
    _negotiated(memo, pdu)
    reloaded = AcceptorPolicy(**{f: getattr(POLICY, f) for f in POLICY.__dataclass_fields__})

    assert memo.recall(_pdu(calling="OTHER"), POLICY, ALL_OPERATIONS) is None
    assert memo.recall(pdu, POLICY, ECHO_ONLY) is None
    assert memo.recall(pdu, reloaded, ALL_OPERATIONS) is None


def test_the_memo_keeps_only_the_most_recent_requests() -> None:
    memo = NegotiationMemo(size=2)
    oldest, middle, newest = _pdu("A"), _pdu("B"), _pdu("C")
    for pdu in (oldest, middle, newest):
        _negotiated(memo, pdu)

    assert memo.recall(oldest, POLICY, ALL_OPERATIONS) is None
    assert memo.recall(middle, POLICY, ALL_OPERATIONS) is not None
    assert memo.recall(newest, POLICY, ALL_OPERATIONS) is not None


def test_an_undecodable_request_is_a_pdu_error_every_time() -> None:
    memo = NegotiationMemo()
    broken = _pdu()[:-7]
    for _ in range(2):
        with pytest.raises(PduError, match="undecodable A-ASSOCIATE-RQ"):
            memo.decode(broken)
