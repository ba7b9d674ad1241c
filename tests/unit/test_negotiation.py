"""Association negotiation on crafted A-ASSOCIATE PDUs (PS3.8 7.1, 9.3; PS3.7 D.3.3.4)."""

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.presentation import PresentationContext

from pacs.net.contexts import VERIFICATION, acceptable, proposal
from pacs.net.handshake import number_contexts
from pacs.net.negotiation import (
    AcceptorPolicy,
    RejectResult,
    RejectSource,
    accept,
    build_request,
    check_request,
    read_acceptance,
    roles_of,
    too_many_associations,
)

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
UNKNOWN_SOP_CLASS = "1.2.3.4.5.6.7"
POLICY = AcceptorPolicy(
    ae_title="PACS",
    check_called_ae_title=True,
    max_pdu_length=65536,
    contexts=[
        *acceptable([VERIFICATION], [ExplicitVRLittleEndian, ImplicitVRLittleEndian]),
        *acceptable([CT_IMAGE], [ImplicitVRLittleEndian]),
    ],
)


def _request(
    contexts: list[PresentationContext], called: str = "PACS", max_pdu: int = 16384
) -> A_ASSOCIATE_RQ:
    rq = A_ASSOCIATE_RQ()
    rq.decode(build_request("MODALITY", called, number_contexts(contexts), max_pdu))
    return rq


def test_each_context_gets_its_own_result() -> None:
    rq = _request(
        [
            proposal(VERIFICATION),
            proposal(UNKNOWN_SOP_CLASS),
            proposal(CT_IMAGE, [JPEGBaseline8Bit]),
            proposal(CT_IMAGE, [JPEGBaseline8Bit, ImplicitVRLittleEndian]),
        ]
    )

    agreement, ac_bytes = accept(rq, POLICY)

    ac = A_ASSOCIATE_AC()
    ac.decode(ac_bytes)
    results = {
        cx.context_id: cx.result
        for cx in ac.to_primitive().presentation_context_definition_results_list
    }
    assert results == {1: 0x00, 3: 0x03, 5: 0x04, 7: 0x00}
    assert sorted(agreement.accepted) == [1, 7]
    assert agreement.accepted[7].transfer_syntax == [ImplicitVRLittleEndian]
    assert agreement.calling_ae_title == "MODALITY"
    assert agreement.peer_max_pdu_length == 16384
    assert ac.to_primitive().maximum_length_received == 65536


def test_the_acceptor_prefers_its_own_transfer_syntax_order() -> None:
    rq = _request([proposal(VERIFICATION, [ImplicitVRLittleEndian, ExplicitVRLittleEndian])])

    agreement, _ = accept(rq, POLICY)

    assert agreement.accepted[1].transfer_syntax == [ExplicitVRLittleEndian]


def test_a_requested_scp_role_is_granted_and_answered() -> None:
    rq = _request([proposal(CT_IMAGE, [ImplicitVRLittleEndian], scu_role=False, scp_role=True)])

    agreement, ac_bytes = accept(rq, POLICY)

    ac = A_ASSOCIATE_AC()
    ac.decode(ac_bytes)
    assert roles_of(ac.to_primitive()) == {CT_IMAGE: (False, True)}
    assert agreement.accepted[1].as_scu is True  # the acceptor sends C-STORE-RQs (C-GET)


def test_without_role_selection_no_role_item_is_returned() -> None:
    _, ac_bytes = accept(_request([proposal(CT_IMAGE, [ImplicitVRLittleEndian])]), POLICY)

    ac = A_ASSOCIATE_AC()
    ac.decode(ac_bytes)
    assert roles_of(ac.to_primitive()) == {}


def test_a_wrong_called_ae_title_is_rejected_permanently_by_the_service_user() -> None:
    rejection = check_request(_request([proposal(VERIFICATION)], called="OTHER"), POLICY)

    assert rejection is not None
    rj = A_ASSOCIATE_RJ()
    rj.decode(rejection.encode())
    assert (rj.result, rj.source, rj.reason_diagnostic) == (0x01, 0x01, 0x07)


def test_the_called_ae_title_is_not_checked_unless_configured() -> None:
    lenient = AcceptorPolicy("PACS", False, 0, POLICY.contexts)

    assert check_request(_request([proposal(VERIFICATION)], called="ANYTHING"), lenient) is None


def test_an_unsupported_protocol_version_is_rejected_by_the_acse_provider() -> None:
    rq = _request([proposal(VERIFICATION)])
    rq.protocol_version = 0x02

    rejection = check_request(rq, POLICY)

    assert rejection is not None
    assert (rejection.result, rejection.source, rejection.reason) == (
        RejectResult.PERMANENT,
        RejectSource.SERVICE_PROVIDER_ACSE,
        0x02,
    )


def test_the_association_limit_is_a_transient_presentation_rejection() -> None:
    rj = A_ASSOCIATE_RJ()
    rj.decode(too_many_associations(4).encode())

    assert (rj.result, rj.source, rj.reason_diagnostic) == (0x02, 0x03, 0x02)


def test_the_requestor_reads_back_what_the_acceptor_agreed() -> None:
    proposed = number_contexts([proposal(VERIFICATION), proposal(UNKNOWN_SOP_CLASS)])
    rq = A_ASSOCIATE_RQ()
    rq.decode(build_request("MODALITY", "PACS", proposed, 0))
    _, ac_bytes = accept(rq, POLICY)
    ac = A_ASSOCIATE_AC()
    ac.decode(ac_bytes)

    agreement = read_acceptance(ac, proposed, "MODALITY")

    assert list(agreement.accepted) == [1]
    assert [cx.result for cx in agreement.rejected] == [0x03]
    assert agreement.peer_max_pdu_length == 65536


def test_a_context_not_permitted_is_a_user_rejection_without_its_role_reply() -> None:
    rq = _request(
        [proposal(VERIFICATION), proposal(CT_IMAGE, [ImplicitVRLittleEndian], scp_role=True)]
    )

    agreement, ac_bytes = accept(rq, POLICY, lambda cx: cx.abstract_syntax != CT_IMAGE)

    ac = A_ASSOCIATE_AC()
    ac.decode(ac_bytes)
    primitive = ac.to_primitive()
    results = {
        cx.context_id: cx.result for cx in primitive.presentation_context_definition_results_list
    }
    assert results == {1: 0x00, 3: 0x01}
    assert roles_of(primitive) == {}
    assert list(agreement.accepted) == [1]
