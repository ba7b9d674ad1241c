"""The DICOM audit message (PS3.15 A.5.1) of an event, as UTF-8 XML.

Coded values use the schema's attributes csd-code, codeSystemName and originalText;
the codes are DCM (PS3.16 CID 400-405) except the patient's ID type, which is RFC-3881's.
"""

import base64
import xml.etree.ElementTree as ET

from pacs.audit.events import AuditEvent, EventKind, EventType, Participant, Role, StudyObject

EVENT_IDS = {
    EventKind.APPLICATION_ACTIVITY: "110100",
    EventKind.INSTANCES_ACCESSED: "110103",
    EventKind.INSTANCES_TRANSFERRED: "110104",
    EventKind.STUDY_DELETED: "110105",
    EventKind.QUERY: "110112",
    EventKind.SECURITY_ALERT: "110113",
    EventKind.BEGIN_TRANSFERRING: "110102",
}
EVENT_TYPES = {
    EventType.APPLICATION_START: "110120",
    EventType.APPLICATION_STOP: "110121",
    EventType.NODE_AUTHENTICATION: "110126",
    EventType.USE_OF_RESTRICTED_FUNCTION: "110132",
}
ROLES = {Role.APPLICATION: "110150", Role.DESTINATION: "110152", Role.SOURCE: "110153"}
# NetworkAccessPointTypeCode: 1 machine name, 2 IP address.
_MACHINE_NAME, _IP_ADDRESS = "1", "2"
# ParticipantObjectTypeCode 1 person, 2 system object; TypeCodeRole 1 patient, 3 report.
_PERSON, _SYSTEM_OBJECT, _PATIENT_ROLE, _REPORT_ROLE, _QUERY_ROLE = "1", "2", "1", "3", "24"


def _code(parent: ET.Element, tag: str, code: str, meaning: str, system: str = "DCM") -> None:
    ET.SubElement(
        parent, tag, {"csd-code": code, "codeSystemName": system, "originalText": meaning}
    )


def _is_ip(host: str) -> bool:
    return bool(host) and (host.replace(".", "").isdigit() or ":" in host)


def _participant(message: ET.Element, participant: Participant) -> None:
    node = participant.node
    # A peer refused before it named its AE title is known by its address.
    user = node.ae_title or node.host or "unknown"
    attributes = {"UserID": user, "UserIsRequestor": str(participant.is_requestor).lower()}
    if participant.process_id:
        attributes["AlternativeUserID"] = participant.process_id
    if node.certificate_subject:
        attributes["UserName"] = node.certificate_subject
    if node.host:
        attributes["NetworkAccessPointID"] = node.host
        attributes["NetworkAccessPointTypeCode"] = (
            _IP_ADDRESS if _is_ip(node.host) else _MACHINE_NAME
        )
    element = ET.SubElement(message, "ActiveParticipant", attributes)
    if participant.role is not None:
        _code(element, "RoleIDCode", ROLES[participant.role], participant.role.value)


def _study(message: ET.Element, study: StudyObject) -> None:
    element = ET.SubElement(
        message,
        "ParticipantObjectIdentification",
        {
            "ParticipantObjectID": study.study_instance_uid,
            "ParticipantObjectTypeCode": _SYSTEM_OBJECT,
            "ParticipantObjectTypeCodeRole": _REPORT_ROLE,
        },
    )
    _code(element, "ParticipantObjectIDTypeCode", "110180", "Study Instance UID")
    for uid, count in study.sop_classes:
        ET.SubElement(element, "SOPClass", {"UID": uid, "NumberOfInstances": str(count)})


def _patient(message: ET.Element, patient_id: str) -> None:
    element = ET.SubElement(
        message,
        "ParticipantObjectIdentification",
        {
            "ParticipantObjectID": patient_id,
            "ParticipantObjectTypeCode": _PERSON,
            "ParticipantObjectTypeCodeRole": _PATIENT_ROLE,
        },
    )
    _code(element, "ParticipantObjectIDTypeCode", "2", "Patient Number", "RFC-3881")


def _query(message: ET.Element, event: AuditEvent) -> None:
    query = event.query
    assert query is not None
    element = ET.SubElement(
        message,
        "ParticipantObjectIdentification",
        {
            "ParticipantObjectID": query.sop_class_uid,
            "ParticipantObjectTypeCode": _SYSTEM_OBJECT,
            "ParticipantObjectTypeCodeRole": _QUERY_ROLE,
        },
    )
    _code(element, "ParticipantObjectIDTypeCode", "110181", "SOP Class UID")
    ET.SubElement(element, "ParticipantObjectQuery").text = base64.b64encode(
        query.identifier
    ).decode("ascii")
    syntax = base64.b64encode(query.transfer_syntax_uid.encode("ascii")).decode("ascii")
    ET.SubElement(element, "ParticipantObjectDetail", {"type": "TransferSyntax", "value": syntax})


def render(event: AuditEvent) -> bytes:
    """The event's DICOM audit message, UTF-8 encoded, with an XML declaration."""
    message = ET.Element("AuditMessage")
    identification = ET.SubElement(
        message,
        "EventIdentification",
        {
            "EventActionCode": event.action.value,
            "EventDateTime": event.time.isoformat(),
            "EventOutcomeIndicator": str(event.outcome.value),
        },
    )
    _code(identification, "EventID", EVENT_IDS[event.kind], event.kind.value)
    if event.event_type is not None:
        code = EVENT_TYPES[event.event_type]
        _code(identification, "EventTypeCode", code, event.event_type.value)
    if event.description:
        ET.SubElement(identification, "EventOutcomeDescription").text = event.description
    for participant in event.participants:
        _participant(message, participant)
    source = ET.SubElement(message, "AuditSourceIdentification", {"AuditSourceID": event.source_id})
    _code(source, "AuditSourceTypeCode", "4", "Application Server Process")
    if event.query is not None:
        _query(message, event)
    for study in event.studies:
        _study(message, study)
    for patient_id in dict.fromkeys(s.patient_id for s in event.studies if s.patient_id):
        _patient(message, patient_id)
    return bytes(ET.tostring(message, encoding="utf-8", xml_declaration=True))
