"""C-ECHO and association handling against real peers: pynetdicom's AE and DCMTK's echoscu."""

import asyncio
import threading
from typing import Any

from pydicom.uid import CTImageStorage, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.pdu import A_ASSOCIATE_RJ

from pacs.net.contexts import VERIFICATION, proposal
from pacs.net.echo import echo as pacs_echo
from pacs.net.handshake import AssociationRejected, number_contexts, request_association
from pacs.net.negotiation import build_request
from pacs.net.pdu import AbortSource, PduType, encode_abort
from pacs.net.timeouts import Timeouts
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs, run_dcmtk

SUCCESS = 0x0000
Verification = "1.2.840.10008.1.1"
UNKNOWN_SOP_CLASS = "1.2.826.0.1.3680043.2.1143.99.1"


async def test_pynetdicom_echo_succeeds(running_pacs: PacsAddress) -> None:
    assert await asyncio.to_thread(scu.echo, running_pacs) == SUCCESS


async def test_dcmtk_echoscu_succeeds_without_special_flags(running_pacs: PacsAddress) -> None:
    code, output = await run_dcmtk("echoscu", "-v", running_pacs.host, str(running_pacs.port))

    assert code == 0, output
    assert "Received Echo Response (Success)" in output


def _echo_with_unsupported_context(address: PacsAddress) -> tuple[list[int], list[int], int]:
    assoc = scu.associate(address, [Verification, UNKNOWN_SOP_CLASS, CTImageStorage])
    try:
        accepted = sorted(int(cx.context_id or 0) for cx in assoc.accepted_contexts)
        rejected = [int(cx.result or 0) for cx in assoc.rejected_contexts]
        return accepted, rejected, int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


async def test_unsupported_abstract_syntax_gets_result_3_and_the_rest_is_served(
    running_pacs: PacsAddress,
) -> None:
    accepted, rejected, status = await asyncio.to_thread(
        _echo_with_unsupported_context, running_pacs
    )

    assert accepted[0] == 1
    assert 0x03 in rejected
    assert status == SUCCESS


def _echo_with_role_selection(address: PacsAddress) -> tuple[bool, bool, int]:
    from pynetdicom import build_role

    assoc = scu.associate(
        address, [(Verification, build_role(Verification, scu_role=True, scp_role=True))]
    )
    try:
        cx = assoc.accepted_contexts[0]
        return bool(cx.as_scu), bool(cx.as_scp), int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


async def test_role_selection_is_answered_and_echo_still_works(running_pacs: PacsAddress) -> None:
    as_scu, as_scp, status = await asyncio.to_thread(_echo_with_role_selection, running_pacs)

    assert (as_scu, as_scp) == (True, True)
    assert status == SUCCESS


async def test_unlimited_and_tiny_max_pdu_are_honoured(running_pacs: PacsAddress) -> None:
    for max_pdu in (0, 64, 16382):
        status = await asyncio.to_thread(scu.echo, running_pacs, maximum_pdu_size=max_pdu)
        assert status == SUCCESS, max_pdu


def _abort_then_echo(address: PacsAddress) -> tuple[bool, int]:
    assoc = scu.associate(address)
    assoc.abort()
    return assoc.is_aborted, scu.echo(address)


async def test_release_and_abort_leave_the_server_serving(running_pacs: PacsAddress) -> None:
    def release() -> bool:
        assoc = scu.associate(running_pacs)
        assoc.release()
        return bool(assoc.is_released)

    assert await asyncio.to_thread(release)
    aborted, status = await asyncio.to_thread(_abort_then_echo, running_pacs)
    assert aborted
    assert status == SUCCESS


async def _rejection(address: PacsAddress, called: str) -> tuple[int, int, int] | None:
    """(result, source, reason) of the server's A-ASSOCIATE-RJ; None when it accepts.

    A requestor of a few lines, not pynetdicom's: when the rejection is followed at once
    by the close, pynetdicom now and then reports an abort (its ACSE thread looks at the
    socket after its DUL thread has already closed it on the A-ASSOCIATE-RJ).
    """
    reader, writer = await asyncio.open_connection(address.host, address.port)
    try:
        contexts = number_contexts([proposal(VERIFICATION)])
        writer.write(build_request("TESTSCU", called, contexts, 0))
        async with asyncio.timeout(10):
            header = await reader.readexactly(6)
            body = await reader.readexactly(int.from_bytes(header[2:], "big"))
        if header[0] == PduType.ASSOCIATE_AC:
            writer.write(encode_abort(AbortSource.SERVICE_USER))
            return None
        assert header[0] == PduType.ASSOCIATE_RJ
        rj = A_ASSOCIATE_RJ()
        rj.decode(header + body)
        return int(rj.result or 0), int(rj.source or 0), int(rj.reason_diagnostic or 0)
    finally:
        writer.close()


async def test_any_called_ae_title_is_answered_by_default(running_pacs: PacsAddress) -> None:
    assert await _rejection(running_pacs, "WHATEVER") is None


async def test_a_wrong_called_ae_title_is_rejected_when_checking_is_on(
    start_pacs: StartPacs,
) -> None:
    pacs = await start_pacs(server={"check_called_ae_title": True, "ae_title": "ARCHIVE"})

    assert await _rejection(pacs, "WRONG") == (0x01, 0x01, 0x07)
    assert await asyncio.to_thread(scu.echo, pacs, called="ARCHIVE") == SUCCESS


def _hold_associations(address: PacsAddress, count: int) -> list[Any]:
    return [scu.associate(address) for _ in range(count)]


async def test_association_limit_rejects_transiently_and_recovers(start_pacs: StartPacs) -> None:
    pacs = await start_pacs(server={"max_associations": 2})
    held = await asyncio.to_thread(_hold_associations, pacs, 2)
    assert all(assoc.is_established for assoc in held)

    assert await _rejection(pacs, "PACS") == (0x02, 0x03, 0x02)

    for assoc in held:
        await asyncio.to_thread(assoc.release)
    assert await asyncio.to_thread(scu.echo, pacs) == SUCCESS


def _note(received: threading.Event) -> int:
    received.set()
    return SUCCESS


async def test_requestor_side_echoes_a_pynetdicom_scp() -> None:
    ae = AE(ae_title="PEER")
    ae.add_supported_context(Verification)
    received = threading.Event()
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[(evt.EVT_C_ECHO, lambda event: _note(received))],
    )
    assert server is not None
    try:
        port = server.server_address[1]
        assoc = await request_association(
            "127.0.0.1",
            port,
            calling_ae_title="PACS",
            called_ae_title="PEER",
            contexts=[proposal(VERIFICATION, [ImplicitVRLittleEndian])],
            timeouts=Timeouts(acse=5, dimse=5, network=5),
            max_pdu_length=16384,
        )
        assert await pacs_echo(assoc) == SUCCESS
        await assoc.release()
        assert received.is_set()
        assert assoc.closed and not assoc.aborted
    finally:
        await asyncio.to_thread(server.shutdown)


async def test_requestor_side_reports_a_rejection(start_pacs: StartPacs) -> None:
    pacs = await start_pacs(server={"check_called_ae_title": True})

    try:
        await request_association(
            pacs.host,
            pacs.port,
            calling_ae_title="ME",
            called_ae_title="NOTPACS",
            contexts=[proposal(VERIFICATION)],
            timeouts=Timeouts(acse=5),
            max_pdu_length=0,
        )
    except AssociationRejected as exc:
        assert "Called AE title not recognised" in str(exc)
    else:
        raise AssertionError("the association should have been rejected")


async def test_many_echoes_on_our_own_requestor(running_pacs: PacsAddress) -> None:
    assoc = await request_association(
        running_pacs.host,
        running_pacs.port,
        calling_ae_title="ME",
        called_ae_title="PACS",
        contexts=[proposal(VERIFICATION)],
        timeouts=Timeouts(acse=5, dimse=5, network=5),
        max_pdu_length=0,
    )
    statuses = [await pacs_echo(assoc) for _ in range(50)]
    await assoc.release()

    assert statuses == [SUCCESS] * 50
