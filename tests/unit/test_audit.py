"""The audit message XML (PS3.15 A.5.1), the syslog spool, and the [audit] settings."""

import base64
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pacs.audit.auditor import Alert, Auditor
from pacs.audit.events import (
    Action,
    AuditEvent,
    EventKind,
    EventType,
    Node,
    Outcome,
    Participant,
    QueryObject,
    Role,
    StudyObject,
)
from pacs.audit.forward import syslog_message
from pacs.audit.message import render
from pacs.audit.sinks import JsonLinesSink
from pacs.audit.spool import Spool, frame, frame_ends
from pacs.config import load_settings
from pacs.errors import ConfigError

CT = "1.2.840.10008.5.1.4.1.1.2"


def _code(element: ET.Element | None) -> tuple[str | None, str | None]:
    assert element is not None
    return element.get("csd-code"), element.get("codeSystemName")


def test_instances_transferred_names_roles_study_and_patient() -> None:
    event = AuditEvent(
        EventKind.INSTANCES_TRANSFERRED,
        Action.CREATE,
        Outcome.SUCCESS,
        (
            Participant(Node("CT1", "10.0.0.5", "CN=ct1"), Role.SOURCE, True),
            Participant(Node("PACS", "archive"), Role.DESTINATION, False, "42"),
        ),
        "PACS",
        studies=(StudyObject("1.2.3", "P-1", ((CT, 3),)),),
    )
    message = ET.fromstring(render(event))

    identification = message.find("EventIdentification")
    assert identification is not None
    assert identification.get("EventActionCode") == "C"
    assert _code(identification.find("EventID")) == ("110104", "DCM")
    source, destination = message.findall("ActiveParticipant")
    assert source.attrib == {
        "UserID": "CT1",
        "UserIsRequestor": "true",
        "UserName": "CN=ct1",
        "NetworkAccessPointID": "10.0.0.5",
        "NetworkAccessPointTypeCode": "2",
    }
    assert _code(source.find("RoleIDCode")) == ("110153", "DCM")
    assert _code(destination.find("RoleIDCode")) == ("110152", "DCM")
    assert destination.get("NetworkAccessPointTypeCode") == "1"
    study, patient = message.findall("ParticipantObjectIdentification")
    assert (study.get("ParticipantObjectID"), study.get("ParticipantObjectTypeCode")) == (
        "1.2.3",
        "2",
    )
    assert _code(study.find("ParticipantObjectIDTypeCode")) == ("110180", "DCM")
    sop_class = study.find("SOPClass")
    assert sop_class is not None and sop_class.attrib == {"UID": CT, "NumberOfInstances": "3"}
    assert (patient.get("ParticipantObjectID"), patient.get("ParticipantObjectTypeCodeRole")) == (
        "P-1",
        "1",
    )
    assert _code(patient.find("ParticipantObjectIDTypeCode")) == ("2", "RFC-3881")


def test_query_carries_the_identifier_and_its_syntax_in_base64() -> None:
    identifier = b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "
    event = AuditEvent(
        EventKind.QUERY,
        Action.EXECUTE,
        Outcome.SUCCESS,
        (Participant(Node("WS", "10.0.0.9"), Role.SOURCE, True),),
        "PACS",
        query=QueryObject("1.2.840.10008.5.1.4.1.2.2.1", "1.2.840.10008.1.2", identifier),
    )
    message = ET.fromstring(render(event))

    (query,) = message.findall("ParticipantObjectIdentification")
    assert query.get("ParticipantObjectTypeCodeRole") == "24"
    assert _code(query.find("ParticipantObjectIDTypeCode")) == ("110181", "DCM")
    assert base64.b64decode(query.findtext("ParticipantObjectQuery") or "") == identifier
    detail = query.find("ParticipantObjectDetail")
    assert detail is not None and detail.get("type") == "TransferSyntax"
    assert base64.b64decode(detail.get("value", "")) == b"1.2.840.10008.1.2"


def test_security_alert_has_its_type_and_reason() -> None:
    event = AuditEvent(
        EventKind.SECURITY_ALERT,
        Action.EXECUTE,
        Outcome.MINOR_FAILURE,
        (),
        "PACS",
        event_type=EventType.USE_OF_RESTRICTED_FUNCTION,
        description="permission denied: <find> & more",
    )
    message = ET.fromstring(render(event))

    identification = message.find("EventIdentification")
    assert identification is not None
    assert _code(identification.find("EventID")) == ("110113", "DCM")
    assert _code(identification.find("EventTypeCode")) == ("110132", "DCM")
    assert identification.findtext("EventOutcomeDescription") == "permission denied: <find> & more"


def test_syslog_message_is_rfc5424_with_the_xml_after_a_bom() -> None:
    event = AuditEvent(EventKind.APPLICATION_ACTIVITY, Action.EXECUTE, Outcome.SUCCESS, (), "PACS")
    message = syslog_message(event, "archive")

    header, _, xml = message.partition(b"\xef\xbb\xbf")
    fields = header.decode().split(" ")
    assert fields[0] == "<85>1" and fields[2:4] == ["archive", "pacs"]
    assert fields[5:7] == ["IHE+RFC-3881", "-"]
    assert ET.fromstring(xml).tag == "AuditMessage"


def test_spool_keeps_undelivered_frames_and_cuts_a_torn_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(frame(b"one") + frame(b"two"))
    spool.mark_sent(len(frame(b"one")))
    spool.append(frame(b"three")[:-2])  # a crash in the middle of an append

    again = Spool(tmp_path)

    assert again.read(again.sent, 1024) == frame(b"two")
    again.mark_sent(again.size)
    assert (again.size, again.sent, Spool(tmp_path).pending) == (0, 0, 0)


def test_spool_reads_a_frame_longer_than_the_limit_whole(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(frame(b"x" * 100) + frame(b"y"))

    data = spool.read(0, 10)

    assert data.startswith(frame(b"x" * 100))
    assert frame_ends(data)[-1] == len(data)
    assert frame_ends(frame(b"a") + b"12 par") == [3]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('syslog = "udp://h:514"', "[audit] syslog: must be tcp://host:port or tls://host:port"),
        ('syslog = "tcp://h:70000"', "[audit] syslog: port must be from 1 to 65535"),
        ('syslog = "tcp://h:6514"\nca_certificates = "ca.pem"', "[audit] ca_certificates: only"),
        (
            'syslog = "tls://h:6514"\nprivate_key = "k.pem"',
            "[audit] private_key: needs certificate",
        ),
        ("fsync = true", "unknown key [audit] fsync"),
    ],
)
def test_audit_settings_errors_name_the_key(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "pacs.toml"
    path.write_text(f"[audit]\n{table}\n")

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(path, environ={})


def test_audit_settings_parse_a_tls_target(tmp_path: Path) -> None:
    path = tmp_path / "pacs.toml"
    path.write_text('[audit]\nfile = "audit.jsonl"\nsyslog = "tls://[::1]:6514"\n')

    audit = load_settings(path, environ={}).audit

    assert audit.syslog_address == (True, "::1", 6514)
    assert audit.file == Path("audit.jsonl").absolute()


async def test_stores_are_reported_per_study_when_the_association_ends(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    auditor = Auditor("PACS", [JsonLinesSink(path)])
    auditor.start()
    modality = Node("CT1", "10.0.0.5")
    for study, patient in [("1.1", "P-1"), ("1.2", "P-2"), ("1.1", "P-1")]:
        auditor.instance_stored("association", modality, study, patient, CT)
    auditor.study_deleted(Node("ADMIN"), StudyObject("1.3", "P-3"), "pacs delete")

    auditor.association_ended("association")
    await auditor.close()

    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["event"], e["action"]) for e in events] == [
        ("DICOM Study Deleted", "D"),
        ("DICOM Instances Transferred", "C"),
        ("DICOM Instances Transferred", "C"),
    ]
    assert [e["studies"][0]["sop_classes"] for e in events[1:]] == [{CT: 2}, {CT: 1}]
    assert [e["studies"][0]["patient_id"] for e in events[1:]] == ["P-1", "P-2"]


async def test_an_unwritable_audit_file_never_fails_the_caller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.jsonl"
    auditor = Auditor("PACS", [JsonLinesSink(path)])
    auditor.start()
    path.unlink()
    path.mkdir()  # a directory now: every write fails

    auditor.application_started()
    auditor.security_alert(Node("X", "10.0.0.7"), Alert.PERMISSION_DENIED, "C-GET not allowed")
    await auditor.close()

    assert any("events not written" in r.getMessage() for r in caplog.records)
