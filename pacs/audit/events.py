"""Audit events as plain values, and their JSON line.

An event is what PS3.15 A.5 asks a message to hold: what happened (event ID, type,
action, outcome), who took part (active participants: AE title, address, certificate
subject, role) and what it touched (participant objects: studies with their patient, or
a query). Each event has a UUID so that a receiver can drop the duplicates that
at-least-once delivery may bring.
"""

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum


class EventKind(StrEnum):
    """The PS3.15 A.5.3 event, named by its EventID's meaning."""

    APPLICATION_ACTIVITY = "Application Activity"
    SECURITY_ALERT = "Security Alert"
    INSTANCES_TRANSFERRED = "DICOM Instances Transferred"
    BEGIN_TRANSFERRING = "Begin Transferring DICOM Instances"
    QUERY = "Query"
    INSTANCES_ACCESSED = "DICOM Instances Accessed"
    STUDY_DELETED = "DICOM Study Deleted"


class EventType(StrEnum):
    """EventTypeCode meanings pacs uses (DCM codes, PS3.16 CID 400/401)."""

    APPLICATION_START = "Application Start"
    APPLICATION_STOP = "Application Stop"
    NODE_AUTHENTICATION = "Node Authentication"
    USE_OF_RESTRICTED_FUNCTION = "Use of Restricted Function"


class Action(StrEnum):
    """EventActionCode: Create, Read, Update, Delete, Execute."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class Outcome(IntEnum):
    """EventOutcomeIndicator."""

    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8
    MAJOR_FAILURE = 12


class Role(StrEnum):
    """RoleIDCode meanings (DCM, PS3.16 CID 402)."""

    APPLICATION = "Application"
    SOURCE = "Source Role ID"
    DESTINATION = "Destination Role ID"


@dataclass(frozen=True, slots=True)
class Node:
    """A DICOM application entity at an address; `certificate_subject` when it used TLS."""

    ae_title: str
    host: str = ""
    certificate_subject: str | None = None


@dataclass(frozen=True, slots=True)
class Participant:
    """An active participant: a node, its role, and whether it asked for the event."""

    node: Node
    role: Role | None
    is_requestor: bool
    process_id: str | None = None  # for pacs itself: its own process


@dataclass(frozen=True, slots=True)
class StudyObject:
    """A study the event touched, its patient, and how many instances of each SOP Class."""

    study_instance_uid: str
    patient_id: str
    sop_classes: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class QueryObject:
    """A C-FIND: its SOP Class, the transfer syntax and bytes of its identifier."""

    sop_class_uid: str
    transfer_syntax_uid: str
    identifier: bytes


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit event; `description` is the EventOutcomeDescription (why it failed)."""

    kind: EventKind
    action: Action
    outcome: Outcome
    participants: tuple[Participant, ...]
    source_id: str  # AuditSourceID: this archive's AE title
    event_type: EventType | None = None
    description: str = ""
    studies: tuple[StudyObject, ...] = ()
    query: QueryObject | None = None
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _participant(p: Participant) -> dict[str, object]:
    return {
        "ae_title": p.node.ae_title,
        "host": p.node.host,
        "certificate_subject": p.node.certificate_subject,
        "role": p.role.value if p.role else None,
        "requestor": p.is_requestor,
        **({"process_id": p.process_id} if p.process_id else {}),
    }


def to_json(event: AuditEvent) -> str:
    """The event as one line of JSON (no newline inside; the identifier as base64)."""
    query = event.query
    document = {
        "id": event.id,
        "time": event.time.isoformat(),
        "event": event.kind.value,
        "type": event.event_type.value if event.event_type else None,
        "action": event.action.value,
        "outcome": event.outcome.value,
        "description": event.description,
        "source": event.source_id,
        "participants": [_participant(p) for p in event.participants],
        "studies": [
            {
                "study_instance_uid": s.study_instance_uid,
                "patient_id": s.patient_id,
                "sop_classes": dict(s.sop_classes),
            }
            for s in event.studies
        ],
        "query": None
        if query is None
        else {
            "sop_class_uid": query.sop_class_uid,
            "transfer_syntax_uid": query.transfer_syntax_uid,
            "identifier": base64.b64encode(query.identifier).decode("ascii"),
        },
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
