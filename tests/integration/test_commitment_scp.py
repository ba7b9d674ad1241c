"""Storage Commitment Push Model against the real server, with pynetdicom as the modality."""

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt

from pacs.store.blobstore import FileBlobStore
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs

COMMITMENT = "1.2.840.10008.1.20.1"
COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
CT, MR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"
SUCCESS = 0x0000
# The failure statuses PS3.7 10.1.4.1.10 lists for N-ACTION.
N_ACTION_FAILURES = {
    0x0110, 0x0112, 0x0114, 0x0115, 0x0117, 0x0118, 0x0119,
    0x0123, 0x0124, 0x0210, 0x0211, 0x0212, 0x0213,
}  # fmt: skip
FAST_RETRY = {"retry_interval": 0.2, "max_retry_interval": 0.5, "report_deadline": 60}


@dataclass
class Reports:
    """N-EVENT-REPORTs a modality received, and where."""

    events: list[tuple[int, Dataset, str]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def record(self, event: Any, where: str) -> tuple[int, None]:
        self.events.append((int(event.event_type), event.event_information, where))
        self.arrived.set()
        return SUCCESS, None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_modality_scp(port: int, reports: Reports) -> Any:
    """The modality's own SCP, where reports on a new association arrive."""
    ae = AE(ae_title="MODALITY")
    ae.add_supported_context(COMMITMENT, scu_role=True, scp_role=True)
    handlers: list[Any] = [
        (evt.EVT_N_EVENT_REPORT, lambda event: reports.record(event, "new association"))
    ]
    return ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)


def action_information(transaction: str, references: list[tuple[str, str]]) -> Dataset:
    info = Dataset()
    info.TransactionUID = transaction
    items = []
    for sop_class, sop_instance in references:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        items.append(item)
    info.ReferencedSOPSequence = items
    return info


def request_commitment(
    address: PacsAddress,
    info: Dataset,
    reports: Reports,
    *,
    wait: float = 0.0,
    action_type: int = 1,
    instance: str = COMMITMENT_INSTANCE,
) -> Dataset:
    """N-ACTION as MODALITY; with `wait`, keep the association open that long for the report."""
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(COMMITMENT)
    handlers: list[Any] = [
        (evt.EVT_N_EVENT_REPORT, lambda event: reports.record(event, "same association"))
    ]
    assoc = ae.associate(address.host, address.port, evt_handlers=handlers)
    assert assoc.is_established
    try:
        status, _ = assoc.send_n_action(info, action_type, COMMITMENT, instance)
        if wait and reports.arrived.wait(wait):
            # The handler ran; pynetdicom's own thread still has to send the
            # N-EVENT-REPORT-RSP, which it cannot do once release has begun.
            threading.Event().wait(0.5)
        return status
    finally:
        assoc.release()


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def peer_port() -> int:
    return free_port()


@pytest.fixture
def modality_scp(peer_port: int, reports: Reports) -> Iterator[Any]:
    server = start_modality_scp(peer_port, reports)
    yield server
    server.shutdown()


async def _pacs(start_pacs: StartPacs, peer_port: int, **commitment: Any) -> PacsAddress:
    return await start_pacs(
        peers=[{"ae_title": "MODALITY", "host": "127.0.0.1", "port": peer_port}],
        commitment={**FAST_RETRY, **commitment},
    )


async def _stored(pacs: PacsAddress, count: int = 2) -> list[Dataset]:
    datasets = [make_instance() for _ in range(count)]
    assert await asyncio.to_thread(scu.store, pacs, datasets) == [SUCCESS] * count
    return datasets


def _refs(datasets: list[Dataset]) -> list[tuple[str, str]]:
    return [(str(ds.SOPClassUID), str(ds.SOPInstanceUID)) for ds in datasets]


def _committed(info: Dataset) -> set[str]:
    return {str(item.ReferencedSOPInstanceUID) for item in info.get("ReferencedSOPSequence", [])}


def _failed(info: Dataset) -> dict[str, int]:
    return {
        str(item.ReferencedSOPInstanceUID): int(item.FailureReason)
        for item in info.get("FailedSOPSequence", [])
    }


async def test_the_report_comes_back_on_the_same_association(
    start_pacs: StartPacs, peer_port: int, reports: Reports
) -> None:
    pacs = await _pacs(start_pacs, peer_port)
    datasets = await _stored(pacs)
    transaction = generate_uid()

    status = await asyncio.to_thread(
        request_commitment, pacs, action_information(transaction, _refs(datasets)), reports, wait=10
    )

    assert status.Status == SUCCESS
    [(event_type, info, where)] = reports.events
    assert (event_type, where) == (1, "same association")
    assert info.TransactionUID == transaction
    assert _committed(info) == {ds.SOPInstanceUID for ds in datasets}
    assert info.RetrieveAETitle == "PACS"


async def test_a_released_requester_gets_the_report_on_a_new_association(
    start_pacs: StartPacs, peer_port: int, reports: Reports, modality_scp: Any
) -> None:
    pacs = await _pacs(start_pacs, peer_port)
    datasets = await _stored(pacs)

    status = await asyncio.to_thread(
        request_commitment, pacs, action_information(generate_uid(), _refs(datasets)), reports
    )
    assert status.Status == SUCCESS
    assert await asyncio.to_thread(reports.arrived.wait, 10)

    [(event_type, info, where)] = reports.events
    assert (event_type, where) == (1, "new association")
    assert _committed(info) == {ds.SOPInstanceUID for ds in datasets}


async def test_missing_instances_and_class_conflicts_fail_with_their_reasons(
    start_pacs: StartPacs, peer_port: int, reports: Reports, modality_scp: Any
) -> None:
    pacs = await _pacs(start_pacs, peer_port)
    [stored, conflicting] = await _stored(pacs)
    missing = generate_uid()
    references = [
        (CT, stored.SOPInstanceUID),
        (MR, conflicting.SOPInstanceUID),  # stored as CT
        (CT, missing),
    ]

    await asyncio.to_thread(
        request_commitment, pacs, action_information(generate_uid(), references), reports
    )
    assert await asyncio.to_thread(reports.arrived.wait, 10)

    [(event_type, info, _)] = reports.events
    assert event_type == 2
    assert _committed(info) == {stored.SOPInstanceUID}
    assert _failed(info) == {conflicting.SOPInstanceUID: 0x0119, missing: 0x0112}


async def test_a_file_altered_in_the_store_fails_under_hash(
    start_pacs: StartPacs, peer_port: int, reports: Reports, modality_scp: Any
) -> None:
    pacs = await _pacs(start_pacs, peer_port)
    [intact, altered] = await _stored(pacs)
    assert pacs.app is not None
    row = await pacs.app.index.get_instance(altered.SOPInstanceUID)
    assert row is not None
    assert isinstance(pacs.app.store, FileBlobStore)
    path = pacs.app.store.path_of(row.blob_sha256)
    path.chmod(0o644)
    with path.open("r+b") as blob:
        blob.seek(-1, 2)
        blob.write(b"\x01")

    await asyncio.to_thread(
        request_commitment,
        pacs,
        action_information(generate_uid(), _refs([intact, altered])),
        reports,
    )
    assert await asyncio.to_thread(reports.arrived.wait, 10)

    [(event_type, info, _)] = reports.events
    assert event_type == 2
    assert _failed(info) == {altered.SOPInstanceUID: 0x0110}
    assert _committed(info) == {intact.SOPInstanceUID}


async def test_a_restart_before_the_report_still_delivers_it(
    start_pacs: StartPacs, peer_port: int, reports: Reports
) -> None:
    pacs = await _pacs(start_pacs, peer_port)
    datasets = await _stored(pacs)
    transaction = generate_uid()
    # The modality is not listening yet: the report stays pending.
    await asyncio.to_thread(
        request_commitment, pacs, action_information(transaction, _refs(datasets)), reports
    )
    assert pacs.app is not None
    await pacs.app.stop(grace=1)

    restarted = await start_pacs(
        directory=pacs.directory,
        peers=[{"ae_title": "MODALITY", "host": "127.0.0.1", "port": peer_port}],
        commitment=FAST_RETRY,
    )
    server = start_modality_scp(peer_port, reports)
    try:
        assert await asyncio.to_thread(reports.arrived.wait, 15)
    finally:
        server.shutdown()

    [(event_type, info, _)] = reports.events
    assert (event_type, str(info.TransactionUID)) == (1, transaction)
    assert _committed(info) == {ds.SOPInstanceUID for ds in datasets}
    assert restarted.app is not None


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("no-transaction", 0x0115),
        ("empty-sequence", 0x0115),
        ("broken-item", 0x0115),
        ("action-type", 0x0123),
        ("sop-instance", 0x0112),
    ],
)
async def test_malformed_requests_get_the_failure_status_that_names_them(
    running_pacs: PacsAddress, reports: Reports, change: str, status: int
) -> None:
    info = action_information(generate_uid(), [(CT, generate_uid())])
    action_type, instance = 1, COMMITMENT_INSTANCE
    if change == "no-transaction":
        del info.TransactionUID
    elif change == "empty-sequence":
        info.ReferencedSOPSequence = []
    elif change == "broken-item":
        del info.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    elif change == "action-type":
        action_type = 2
    else:
        instance = generate_uid()

    response = await asyncio.to_thread(
        request_commitment, running_pacs, info, reports, action_type=action_type, instance=instance
    )

    assert response.Status == status
    assert response.Status in N_ACTION_FAILURES
    assert response.ErrorComment
    assert await asyncio.to_thread(scu.echo, running_pacs) == SUCCESS


async def test_a_requester_down_for_a_while_gets_the_report_when_it_is_back(
    start_pacs: StartPacs, peer_port: int, reports: Reports, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pacs.archive.commitment")
    pacs = await _pacs(start_pacs, peer_port)
    datasets = await _stored(pacs)
    transaction = generate_uid()
    await asyncio.to_thread(
        request_commitment, pacs, action_information(transaction, _refs(datasets)), reports
    )

    def failed_attempts() -> int:
        return sum(
            f"commitment {transaction}: report not delivered" in r.getMessage()
            for r in caplog.records
        )

    async with asyncio.timeout(30):  # several attempts fail while nobody listens
        while failed_attempts() < 3:
            await asyncio.sleep(0.02)
    assert not reports.events

    server = start_modality_scp(peer_port, reports)
    try:
        assert await asyncio.to_thread(reports.arrived.wait, 15)
    finally:
        server.shutdown()

    [(event_type, info, where)] = reports.events
    assert (event_type, str(info.TransactionUID), where) == (1, transaction, "new association")
