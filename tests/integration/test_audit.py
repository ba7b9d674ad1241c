"""The audit trail of a running server: what each operation records, and syslog that
loses nothing across an outage of its receiver or a restart of pacs."""

import asyncio
import base64
import json
import logging
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pacs.audit.events import EventKind
from pacs.audit.message import EVENT_IDS
from pacs.net.identifier import decode_identifier
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs
from tests.integration.syslog_receiver import SyslogReceiver
from tests.integration.test_commitment_scp import (  # noqa: F401 (fixtures)
    Reports,
    action_information,
    peer_port,
    reports,
    request_commitment,
)
from tests.integration.test_retrieve_scp import (  # noqa: F401 (the receiver fixture)
    CT,
    STUDY_ROOT_MOVE,
    Receiver,
    _get,
    _identifier,
    _move,
    receiver,
)

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
SUCCESS = 0x0000
ARRIVAL_TIMEOUT = 60.0


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _eventually(check: Callable[[], bool], timeout: float = ARRIVAL_TIMEOUT) -> None:
    """Poll `check` until it holds; the audit threads write on their own schedule."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


def _of(events: list[dict[str, Any]], kind: EventKind) -> list[dict[str, Any]]:
    return [event for event in events if event["event"] == kind.value]


def _keys(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    by_name = {kind.value: code for kind, code in EVENT_IDS.items()}
    return {(by_name[event["event"]], event["time"]) for event in events}


async def test_operations_are_audited_with_peer_patient_and_study(
    start_pacs: StartPacs,
    receiver: Receiver,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    audit_file = tmp_path / "audit.jsonl"
    pacs = await start_pacs(
        server={"check_called_ae_title": True},
        audit={"file": audit_file},
        peers=[{"ae_title": "DEST", "host": "127.0.0.1", "port": receiver.port}],
    )
    study = generate_uid()
    datasets = [make_instance(StudyInstanceUID=study, PatientID="AUD-1") for _ in range(2)]
    assert await asyncio.to_thread(scu.store, pacs, datasets) == [SUCCESS, SUCCESS]
    query = _identifier("STUDY", PatientID="AUD-1", StudyInstanceUID="")
    final, matches = await asyncio.to_thread(scu.find, pacs, STUDY_ROOT_FIND, query)
    assert (final, len(matches)) == (SUCCESS, 1)
    identifier = _identifier("STUDY", StudyInstanceUID=study)
    assert (await asyncio.to_thread(_move, pacs, STUDY_ROOT_MOVE, "DEST", identifier))[0] == 0
    final, _, _ = await asyncio.to_thread(_get, pacs, identifier, [(CT, [ExplicitVRLittleEndian])])
    assert final == SUCCESS
    assert await asyncio.to_thread(scu.echo, pacs, called="NOT-PACS") == -1
    assert pacs.app is not None
    await pacs.app.stop(grace=2)

    events = _events(audit_file)
    assert [e["type"] for e in _of(events, EventKind.APPLICATION_ACTIVITY)] == [
        "Application Start",
        "Application Stop",
    ]
    (stored,) = [e for e in _of(events, EventKind.INSTANCES_TRANSFERRED) if e["action"] == "C"]
    assert stored["studies"] == [
        {"study_instance_uid": study, "patient_id": "AUD-1", "sop_classes": {CT: 2}}
    ]
    source = stored["participants"][0]
    assert (source["ae_title"], source["host"], source["role"]) == (
        "MODALITY",
        "127.0.0.1",
        "Source Role ID",
    )
    (find,) = _of(events, EventKind.QUERY)
    assert find["participants"][0]["ae_title"] == "WORKSTATION"
    sent = decode_identifier(base64.b64decode(find["query"]["identifier"]), ExplicitVRLittleEndian)
    assert sent.PatientID == "AUD-1"
    begun = _of(events, EventKind.BEGIN_TRANSFERRING)
    assert [e["studies"][0]["study_instance_uid"] for e in begun] == [study, study]
    read = [e for e in _of(events, EventKind.INSTANCES_TRANSFERRED) if e["action"] == "R"]
    destinations = [[p["ae_title"] for p in e["participants"]] for e in read]
    assert destinations == [["PACS", "DEST", "WORKSTATION"], ["PACS", "GETTER"]]
    assert all(e["studies"][0]["sop_classes"] == {CT: 2} for e in read)
    (alert,) = _of(events, EventKind.SECURITY_ALERT)
    assert alert["participants"][1]["ae_title"] == "TESTSCU"
    assert "NOT-PACS" in alert["description"]
    names = {str(ds.PatientName) for ds in datasets}
    assert not [r for r in caplog.records if any(name in r.getMessage() for name in names)]


def _audit(tmp_path: Path, syslog: SyslogReceiver) -> dict[str, Any]:
    return {
        "file": tmp_path / "audit.jsonl",
        "syslog": f"tcp://127.0.0.1:{syslog.port}",
        "spool": tmp_path / "spool",
    }


def _query(pacs: PacsAddress) -> None:
    final, _ = scu.find(pacs, STUDY_ROOT_FIND, _identifier("STUDY", PatientID="NOBODY"))
    assert final == SUCCESS


async def _survive_outage(start_pacs: StartPacs, tmp_path: Path, outage: float) -> None:
    syslog = SyslogReceiver()
    await syslog.start()
    audit = _audit(tmp_path, syslog)
    pacs = await start_pacs(audit=audit)
    assert await asyncio.to_thread(scu.store, pacs, [make_instance()]) == [SUCCESS]
    await syslog.wait_for(lambda messages: len(messages) >= 2, ARRIVAL_TIMEOUT)
    await syslog.stop()

    loop = asyncio.get_running_loop()
    back_at = loop.time() + outage
    queries = 0
    while loop.time() < back_at:  # events keep coming while the receiver is down
        await asyncio.to_thread(_query, pacs)
        queries += 1
        await asyncio.sleep(outage / 10)
    await syslog.start()

    await _eventually(lambda: len(_events(audit["file"])) == 2 + queries)
    expected = _keys(_events(audit["file"]))
    await syslog.wait_for(lambda _: syslog.keys() >= expected, ARRIVAL_TIMEOUT)
    assert syslog.keys() == expected


async def test_syslog_events_survive_a_short_outage_of_the_receiver(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    await _survive_outage(start_pacs, tmp_path, outage=3.0)


@pytest.mark.slow
async def test_syslog_events_survive_a_minute_long_outage_of_the_receiver(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    await _survive_outage(start_pacs, tmp_path, outage=60.0)


async def test_a_restart_sends_what_was_spooled_while_the_receiver_was_down(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    syslog = SyslogReceiver()
    await syslog.start()
    audit = _audit(tmp_path, syslog)
    first = await start_pacs(audit=audit)
    await syslog.wait_for(lambda messages: len(messages) >= 1, ARRIVAL_TIMEOUT)
    await syslog.stop()
    for _ in range(3):
        await asyncio.to_thread(_query, first)
    assert first.app is not None
    await first.app.stop(grace=2)  # three queries and the stop wait in the spool

    await syslog.start()
    await start_pacs(first.directory, audit=audit)

    # Two starts, three queries and one stop, each at least once (see pacs.audit.forward).
    await _eventually(lambda: len(_events(audit["file"])) == 6)
    expected = _keys(_events(audit["file"]))
    await syslog.wait_for(lambda _: syslog.keys() >= expected, ARRIVAL_TIMEOUT)
    assert syslog.keys() == expected


def _self_signed(directory: Path, name: str = "receiver") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by the openssl command."""
    certificate, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "1", "-subj", f"/CN={name}",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(certificate),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return certificate, key


async def test_syslog_over_tls_reaches_a_receiver_whose_certificate_the_ca_file_trusts(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    certificate, key = _self_signed(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(certificate, key)
    syslog = SyslogReceiver(server_side)
    await syslog.start()
    audit = {
        **_audit(tmp_path, syslog),
        "syslog": f"tls://127.0.0.1:{syslog.port}",
        "ca_certificates": certificate,
    }

    pacs = await start_pacs(audit=audit)
    assert await asyncio.to_thread(scu.store, pacs, [make_instance(PatientID="TLS-1")]) == [SUCCESS]

    await syslog.wait_for(lambda messages: len(messages) >= 2, ARRIVAL_TIMEOUT)
    assert syslog.tls_versions <= {"TLSv1.2", "TLSv1.3"} and syslog.tls_versions
    patients = [
        element.get("ParticipantObjectID")
        for message in syslog.messages
        for element in message.xml.iter("ParticipantObjectIdentification")
        if element.get("ParticipantObjectTypeCode") == "1"
    ]
    assert patients == ["TLS-1"]


async def test_a_tls_syslog_receiver_with_an_untrusted_certificate_gets_nothing(
    start_pacs: StartPacs, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    certificate, key = _self_signed(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(certificate, key)
    syslog = SyslogReceiver(server_side)
    await syslog.start()
    audit = {**_audit(tmp_path, syslog), "syslog": f"tls://127.0.0.1:{syslog.port}"}

    pacs = await start_pacs(audit=audit)  # the system CAs do not vouch for the receiver
    assert await asyncio.to_thread(scu.store, pacs, [make_instance()]) == [SUCCESS]

    def refused() -> bool:
        return any("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records)

    await _eventually(refused)
    assert await asyncio.to_thread(scu.echo, pacs) == SUCCESS  # pacs serves on
    assert syslog.messages == []


async def test_a_tls_client_hello_on_the_plain_port_is_a_security_alert(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    audit_file = tmp_path / "audit.jsonl"
    pacs = await start_pacs(audit={"file": audit_file})
    reader, writer = await asyncio.open_connection(pacs.host, pacs.port)
    writer.write(bytes.fromhex("160301020001") + bytes(512))  # a TLS record: handshake

    assert await reader.read() == b""  # closed: an A-ABORT would mean nothing to TLS
    writer.close()
    assert pacs.app is not None
    await pacs.app.stop(grace=2)

    (alert,) = _of(_events(audit_file), EventKind.SECURITY_ALERT)
    peer = alert["participants"][1]
    assert (peer["ae_title"], peer["host"]) == ("", "127.0.0.1")
    assert alert["description"].startswith("TLS failure: a TLS ClientHello on the plain")


async def test_a_storage_commitment_is_audited_as_instances_accessed(
    start_pacs: StartPacs,
    tmp_path: Path,
    peer_port: int,  # noqa: F811
    reports: Reports,  # noqa: F811
) -> None:
    audit_file = tmp_path / "audit.jsonl"
    pacs = await start_pacs(
        audit={"file": audit_file},
        peers=[{"ae_title": "MODALITY", "host": "127.0.0.1", "port": peer_port}],
    )
    study = generate_uid()
    datasets = [make_instance(StudyInstanceUID=study, PatientID="SC-1") for _ in range(2)]
    assert await asyncio.to_thread(scu.store, pacs, datasets) == [SUCCESS, SUCCESS]
    references = [(str(ds.SOPClassUID), str(ds.SOPInstanceUID)) for ds in datasets]
    references.append((CT, generate_uid()))  # never stored
    info = action_information(generate_uid(), references)

    status = await asyncio.to_thread(request_commitment, pacs, info, reports, wait=10)

    assert status.Status == SUCCESS
    await _eventually(lambda: bool(_of(_events(audit_file), EventKind.INSTANCES_ACCESSED)))
    (accessed,) = _of(_events(audit_file), EventKind.INSTANCES_ACCESSED)
    assert accessed["studies"] == [
        {"study_instance_uid": study, "patient_id": "SC-1", "sop_classes": {CT: 2}}
    ]
    assert (accessed["outcome"], accessed["participants"][0]["ae_title"]) == (4, "MODALITY")


async def test_syslog_over_tls_presents_our_client_certificate_to_a_receiver_that_asks(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    certificate, key = _self_signed(tmp_path)
    client_certificate, client_key = _self_signed(tmp_path, "pacs")
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=client_certificate)
    server_side.verify_mode = ssl.CERT_REQUIRED
    server_side.load_cert_chain(certificate, key)
    syslog = SyslogReceiver(server_side)
    await syslog.start()
    audit = {
        **_audit(tmp_path, syslog),
        "syslog": f"tls://127.0.0.1:{syslog.port}",
        "ca_certificates": certificate,
        "certificate": client_certificate,
        "private_key": client_key,
    }

    await start_pacs(audit=audit)

    await syslog.wait_for(lambda messages: len(messages) >= 1, ARRIVAL_TIMEOUT)
    assert syslog.client_subjects == [((("commonName", "pacs"),),)]
