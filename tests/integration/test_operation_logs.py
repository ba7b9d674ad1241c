"""What pacs logs about associations and operations: lines an admin can act on.

Each test drives the real server over real associations, then stops it (which waits
for every association task) and reads the records pacs logged.
"""

import asyncio
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.dsutils import encode

from pacs.net.command_set import encode_command
from pacs.net.contexts import VERIFICATION, proposal
from pacs.net.dimse import Command
from pacs.net.handshake import number_contexts
from pacs.net.negotiation import build_request
from pacs.net.pdu import AbortSource, encode_abort, pdata_header
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
SUCCESS, OUT_OF_RESOURCES = 0x0000, 0xA700
NAME = "Doe^Jane"  # make_instance's PatientName: never at INFO or above


@dataclass
class Receiver:
    """A pynetdicom storage SCP as C-MOVE destination; it refuses the UIDs in `refuse`."""

    port: int = 0
    refuse: set[str] = field(default_factory=set)
    received: list[str] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    ae = AE(ae_title="DEST")
    ae.add_supported_context(CTImageStorage, [ExplicitVRLittleEndian])
    state = Receiver()
    lock = threading.Lock()

    def on_store(event: Any) -> Any:
        uid = str(event.request.AffectedSOPInstanceUID)
        if uid in state.refuse:
            answer = Dataset()
            answer.Status = OUT_OF_RESOURCES
            answer.ErrorComment = "disk full at DEST"
            return answer
        with lock:
            state.received.append(uid)
        return SUCCESS

    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    assert server is not None
    state.port = server.server_address[1]
    yield state
    server.shutdown()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="pacs")
    return caplog


def _pacs_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("pacs")]


def _lines(caplog: pytest.LogCaptureFixture, *words: str) -> list[logging.LogRecord]:
    """pacs's records whose message contains every one of `words`."""
    return [r for r in _pacs_records(caplog) if all(w in r.getMessage() for w in words)]


def _one(caplog: pytest.LogCaptureFixture, *words: str) -> logging.LogRecord:
    found = _lines(caplog, *words)
    assert len(found) == 1, (words, [r.getMessage() for r in _pacs_records(caplog)])
    return found[0]


def _no_names_at_info(caplog: pytest.LogCaptureFixture) -> None:
    loud = [r.getMessage() for r in _pacs_records(caplog) if r.levelno >= logging.INFO]
    assert not [line for line in loud if "Doe" in line], loud


async def _stop(pacs: PacsAddress) -> None:
    """Stop the server: every association task has ended, so every line is logged."""
    assert pacs.app is not None
    await pacs.app.stop(grace=5)


def _identifier(level: str, **keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


# -- associations ---------------------------------------------------------------


async def test_an_association_has_an_open_line_and_a_close_line_saying_how_it_ended(
    running_pacs: PacsAddress, logs: pytest.LogCaptureFixture
) -> None:
    assert await asyncio.to_thread(scu.echo, running_pacs, ae_title="ECHOER") == SUCCESS
    await _stop(running_pacs)

    opened = _one(logs, "association from ECHOER@127.0.0.1:", "to PACS accepted")
    closed = _one(logs, "association from ECHOER@127.0.0.1:", "released by the peer", "after")
    assert closed.levelno == logging.INFO
    assert "1 operation" in closed.getMessage()
    assert opened.getMessage().split()[2] == closed.getMessage().split()[2]  # same peer
    assert not _lines(logs, "ECHOER", "closed by the peer")


async def test_a_rejected_association_is_a_warning(
    start_pacs: StartPacs, logs: pytest.LogCaptureFixture
) -> None:
    pacs = await start_pacs(server={"check_called_ae_title": True})
    assert await asyncio.to_thread(scu.echo, pacs, ae_title="LOST", called="NOTPACS") == -1
    await _stop(pacs)

    line = _one(logs, "association from LOST@127.0.0.1:", "to NOTPACS rejected")
    assert line.levelno == logging.WARNING


async def test_an_abort_by_the_peer_is_logged_once_as_such(
    running_pacs: PacsAddress, logs: pytest.LogCaptureFixture
) -> None:
    def echo_then_abort() -> None:
        assoc = scu.associate(running_pacs, ae_title="QUITTER")
        assert assoc.is_established
        assoc.send_c_echo()
        assoc.abort()

    await asyncio.to_thread(echo_then_abort)
    await _stop(running_pacs)

    line = _one(logs, "QUITTER", "aborted")
    assert "aborted by the peer" in line.getMessage()
    assert "1 operation" in line.getMessage()
    assert line.levelno == logging.WARNING


async def test_a_protocol_error_abort_says_pacs_aborted_and_why(
    running_pacs: PacsAddress, logs: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_connection(running_pacs.host, running_pacs.port)
    contexts = number_contexts([proposal(VERIFICATION, [ImplicitVRLittleEndian])])
    writer.write(build_request("RAW", running_pacs.ae_title, contexts, 0))
    async with asyncio.timeout(10):
        await reader.readexactly(6)  # the A-ASSOCIATE-AC's header...
        await reader.read(65536)  # ...and the rest of it
        writer.write(pdata_header(99, 0x03, 4) + b"\x00\x00\x00\x00")  # context 99: not ours
        while await reader.read(65536):
            pass
    writer.close()
    await _stop(running_pacs)

    line = _one(logs, "RAW@127.0.0.1:", "aborted")
    assert "aborted by pacs" in line.getMessage()
    assert "presentation context 99" in line.getMessage()
    assert line.levelno == logging.WARNING
    assert not _lines(logs, "RAW@", "closed by the peer")


async def test_a_silent_peer_is_aborted_by_pacs_after_the_network_timeout(
    start_pacs: StartPacs, logs: pytest.LogCaptureFixture
) -> None:
    pacs = await start_pacs(server={"network_timeout": 1})
    reader, writer = await asyncio.open_connection(pacs.host, pacs.port)
    contexts = number_contexts([proposal(VERIFICATION, [ImplicitVRLittleEndian])])
    writer.write(build_request("SILENT", pacs.ae_title, contexts, 0))
    async with asyncio.timeout(10):
        while await reader.read(65536):  # the A-ASSOCIATE-AC, then pacs's A-ABORT
            pass
    writer.close()
    await _stop(pacs)

    line = _one(logs, "SILENT@127.0.0.1:", "aborted")
    assert "aborted by pacs" in line.getMessage()
    assert "no data for 1" in line.getMessage()
    assert not _lines(logs, "SILENT@", "closed by the peer")


async def test_an_association_aborted_at_shutdown_is_not_closed_by_the_peer(
    running_pacs: PacsAddress, logs: pytest.LogCaptureFixture
) -> None:
    assoc = await asyncio.to_thread(scu.associate, running_pacs, ae_title="IDLER")
    assert assoc.is_established
    assert running_pacs.app is not None
    await running_pacs.app.stop(grace=0.2)
    await asyncio.to_thread(assoc.release)  # already aborted: returns at once

    line = _one(logs, "IDLER@127.0.0.1:", "aborted")
    assert "aborted by pacs" in line.getMessage()
    assert "shutting down" in line.getMessage()
    assert not _lines(logs, "IDLER@", "closed by the peer")


async def test_a_requester_silent_past_the_dimse_timeout_is_aborted_by_pacs(
    start_pacs: StartPacs, logs: pytest.LogCaptureFixture
) -> None:
    pacs = await start_pacs(server={"dimse_timeout": 1})
    ct = make_instance()
    assert await asyncio.to_thread(scu.store, pacs, [ct]) == [SUCCESS]
    reader, writer = await asyncio.open_connection(pacs.host, pacs.port)
    contexts = number_contexts(
        [
            proposal(STUDY_ROOT_GET, [ImplicitVRLittleEndian]),
            proposal(CTImageStorage, [ExplicitVRLittleEndian], scu_role=False, scp_role=True),
        ]
    )
    writer.write(build_request("STALLER", pacs.ae_title, contexts, 0))
    command = Dataset()
    command.CommandField = Command.C_GET_RQ
    command.MessageID = 1
    command.AffectedSOPClassUID = STUDY_ROOT_GET
    command.Priority = 0
    command.CommandDataSetType = 0x0001
    encoded = encode_command(command)
    identifier = encode(_identifier("STUDY", StudyInstanceUID=ct.StudyInstanceUID), True, True)
    assert identifier is not None
    async with asyncio.timeout(10):
        await reader.readexactly(6)  # the A-ASSOCIATE-AC's header...
        await reader.read(65536)  # ...and the rest of it
        writer.write(pdata_header(1, 0x03, len(encoded)) + encoded)
        writer.write(pdata_header(1, 0x02, len(identifier)) + identifier)
        # pacs sends the sub-operation's C-STORE-RQ, is never answered, and aborts.
        while await reader.read(65536):
            pass
    writer.close()
    await _stop(pacs)

    line = _one(logs, "STALLER@127.0.0.1:", "aborted")
    assert "aborted by pacs" in line.getMessage()
    assert "no response within 1" in line.getMessage()
    assert not _lines(logs, "STALLER@", "closed by the peer")
    unanswered = _one(logs, "C-GET from STALLER@127.0.0.1:", "not answered")
    assert unanswered.levelno == logging.WARNING


# -- C-STORE ----------------------------------------------------------------------


async def test_stores_log_the_instance_and_a_refused_store_is_a_warning_with_the_reason(
    start_pacs: StartPacs, logs: pytest.LogCaptureFixture
) -> None:
    pacs = await start_pacs(storage={"duplicate_policy": "reject"})
    good, no_study = make_instance(), make_instance(StudyInstanceUID=None)
    altered = make_instance(SOPInstanceUID=good.SOPInstanceUID, PatientName="Doe^John")
    statuses = await asyncio.to_thread(scu.store, pacs, [good, no_study, altered])
    assert statuses == [SUCCESS, 0xC000, 0x0111]
    await _stop(pacs)

    stored = _one(logs, "C-STORE from MODALITY@127.0.0.1:", good.SOPInstanceUID, "0x0000")
    assert stored.levelno == logging.INFO
    missing = _one(logs, "C-STORE from MODALITY@127.0.0.1:", no_study.SOPInstanceUID)
    assert missing.levelno == logging.WARNING
    assert "refused 0xC000" in missing.getMessage()
    assert "StudyInstanceUID" in missing.getMessage()
    duplicate = _one(logs, "C-STORE from MODALITY@127.0.0.1:", "refused 0x0111")
    assert duplicate.levelno == logging.WARNING
    assert good.SOPInstanceUID in duplicate.getMessage()
    assert "duplicate policy rejects it" in duplicate.getMessage()
    _no_names_at_info(logs)


async def test_a_store_cut_short_by_an_abort_is_a_warning_naming_the_instance(
    running_pacs: PacsAddress, logs: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_connection(running_pacs.host, running_pacs.port)
    contexts = number_contexts([proposal(CTImageStorage, [ExplicitVRLittleEndian])])
    writer.write(build_request("CUTTER", running_pacs.ae_title, contexts, 0))
    uid = make_instance().SOPInstanceUID
    command = Dataset()
    command.CommandField = Command.C_STORE_RQ
    command.MessageID = 1
    command.AffectedSOPClassUID = CTImageStorage
    command.AffectedSOPInstanceUID = uid
    command.Priority = 0
    command.CommandDataSetType = 0x0001
    encoded = encode_command(command)
    async with asyncio.timeout(10):
        await reader.readexactly(6)  # the A-ASSOCIATE-AC's header...
        await reader.read(65536)  # ...and the rest of it
        writer.write(pdata_header(1, 0x03, len(encoded)) + encoded)
        writer.write(pdata_header(1, 0x00, 8) + b"\x08\x00\x05\x00CS\x0a\x00")  # not the last
        writer.write(encode_abort(AbortSource.SERVICE_USER))
        while await reader.read(65536):
            pass
    writer.close()
    await _stop(running_pacs)

    line = _one(logs, "C-STORE from CUTTER@127.0.0.1:", uid)
    assert "not stored" in line.getMessage()
    assert line.levelno == logging.WARNING
    assert _one(logs, "association from CUTTER@", "aborted by the peer", "0 operations")


# -- C-FIND -----------------------------------------------------------------------


async def test_a_find_line_gives_the_level_and_the_number_of_matches(
    running_pacs: PacsAddress, logs: pytest.LogCaptureFixture
) -> None:
    datasets = [make_instance(PatientID="LOG-FIND") for _ in range(3)]
    assert await asyncio.to_thread(scu.store, running_pacs, datasets) == [SUCCESS] * 3
    found = _identifier("STUDY", PatientID="LOG-FIND", StudyInstanceUID="", PatientName="")
    final, matches = await asyncio.to_thread(scu.find, running_pacs, STUDY_ROOT_FIND, found)
    assert (final, len(matches)) == (SUCCESS, 3)
    refused, _ = await asyncio.to_thread(
        scu.find, running_pacs, STUDY_ROOT_FIND, _identifier("WARD")
    )
    assert refused == 0xA900
    await _stop(running_pacs)

    line = _one(logs, "C-FIND from WORKSTATION@127.0.0.1:", "0x0000")
    assert "STUDY level, 3 matches" in line.getMessage()
    assert line.levelno == logging.INFO
    bad = _one(logs, "C-FIND from WORKSTATION@127.0.0.1:", "refused 0xA900")
    assert "WARD" in bad.getMessage()
    assert bad.levelno == logging.WARNING
    _no_names_at_info(logs)


# -- C-MOVE and C-GET ---------------------------------------------------------------


def _move(address: PacsAddress, destination: str, identifier: Dataset) -> int:
    ae = AE(ae_title="MOVER")
    ae.add_requested_context(STUDY_ROOT_MOVE)
    assoc = ae.associate(address.host, address.port, ae_title=address.ae_title)
    assert assoc.is_established
    try:
        responses = [r for r, _ in assoc.send_c_move(identifier, destination, STUDY_ROOT_MOVE)]
    finally:
        assoc.release()
    return int(responses[-1].Status)


async def _pacs_with_study(start_pacs: StartPacs, receiver: Receiver) -> tuple[PacsAddress, str]:
    pacs = await start_pacs(
        peers=[
            {"ae_title": "DEST", "host": "127.0.0.1", "port": receiver.port},
            {"ae_title": "DOWN", "host": "127.0.0.1", "port": 1},
        ]
    )
    study = make_instance().StudyInstanceUID
    datasets = [make_instance(StudyInstanceUID=study) for _ in range(3)]
    assert await asyncio.to_thread(scu.store, pacs, datasets) == [SUCCESS] * 3
    receiver.refuse.add(datasets[1].SOPInstanceUID)
    return pacs, study


async def test_a_move_names_its_destination_counts_and_sub_association(
    start_pacs: StartPacs, receiver: Receiver, logs: pytest.LogCaptureFixture
) -> None:
    pacs, study = await _pacs_with_study(start_pacs, receiver)
    refused_uid = next(iter(receiver.refuse))
    identifier = _identifier("STUDY", StudyInstanceUID=study)

    assert await asyncio.to_thread(_move, pacs, "DEST", identifier) == 0xB000
    await _stop(pacs)

    line = _one(logs, "C-MOVE from MOVER@127.0.0.1:", "to DEST,")
    message = line.getMessage()
    assert f"STUDY {study}" in message
    assert "2 completed, 1 failed, 0 warning" in message
    assert "0xB000" in message
    assert line.levelno == logging.WARNING
    where = f"DEST@127.0.0.1:{receiver.port}"
    opened = _one(logs, f"association to {where}", "accepted")
    assert "1 of 1 contexts" in opened.getMessage()
    assert "C-MOVE from MOVER" in opened.getMessage()
    closed = _one(logs, f"association to {where}", "released after")
    assert "3 operations" in closed.getMessage()
    sub = _one(logs, refused_uid, "DEST", "0xA700")
    assert "disk full at DEST" in sub.getMessage()
    assert sub.levelno == logging.WARNING
    _no_names_at_info(logs)


async def test_a_move_to_an_unknown_or_unreachable_destination_is_a_warning_saying_why(
    start_pacs: StartPacs, receiver: Receiver, logs: pytest.LogCaptureFixture
) -> None:
    pacs, study = await _pacs_with_study(start_pacs, receiver)
    identifier = _identifier("STUDY", StudyInstanceUID=study)

    assert await asyncio.to_thread(_move, pacs, "NOBODY", identifier) == 0xA801
    assert await asyncio.to_thread(_move, pacs, "DOWN", identifier) == 0xA702
    await _stop(pacs)

    unknown = _one(logs, "C-MOVE from MOVER@127.0.0.1:", "to NOBODY,")
    assert "refused 0xA801" in unknown.getMessage()
    assert unknown.levelno == logging.WARNING
    down = _one(logs, "C-MOVE from MOVER@127.0.0.1:", "to DOWN,")
    assert "refused 0xA702" in down.getMessage()
    assert down.levelno == logging.WARNING
    failed = _one(logs, "association to DOWN@127.0.0.1:1", "failed")
    assert "C-MOVE from MOVER" in failed.getMessage()
    assert failed.levelno == logging.WARNING


async def test_a_get_names_the_requester_and_the_counts(
    running_pacs: PacsAddress, logs: pytest.LogCaptureFixture
) -> None:
    study = make_instance().StudyInstanceUID
    datasets = [make_instance(StudyInstanceUID=study) for _ in range(2)]
    assert await asyncio.to_thread(scu.store, running_pacs, datasets) == [SUCCESS] * 2

    def get() -> int:
        ae = AE(ae_title="GETTER")
        ae.add_requested_context(STUDY_ROOT_GET)
        ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
        assoc = ae.associate(
            running_pacs.host,
            running_pacs.port,
            ae_title=running_pacs.ae_title,
            ext_neg=[build_role(CTImageStorage, scp_role=True)],
            evt_handlers=[(evt.EVT_C_STORE, lambda event: SUCCESS)],
        )
        assert assoc.is_established
        try:
            identifier = _identifier("STUDY", StudyInstanceUID=study)
            responses = [r for r, _ in assoc.send_c_get(identifier, STUDY_ROOT_GET)]
        finally:
            assoc.release()
        return int(responses[-1].Status)

    assert await asyncio.to_thread(get) == SUCCESS
    await _stop(running_pacs)

    line = _one(logs, "C-GET from GETTER@127.0.0.1:", "to GETTER,")
    message = line.getMessage()
    assert f"STUDY {study}" in message
    assert "2 completed, 0 failed, 0 warning" in message
    assert "status 0x0000" in message
    assert line.levelno == logging.INFO
    closed = _one(logs, "association from GETTER@127.0.0.1:", "released by the peer")
    assert "1 operation" in closed.getMessage()
