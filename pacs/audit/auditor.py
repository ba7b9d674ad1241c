"""The Auditor: one method per kind of audit event, callable from the event loop.

Each method builds its event and appends it to each sink's queue: it never blocks
and never raises into the caller (an audit failure must not fail a store; it is
logged). Instances stored are counted per association and study, and reported as one
"DICOM Instances Transferred" event per study when the association ends (PS3.15
A.5.3.4 allows aggregation: one event per study, as one message may name only one
patient). Sent instances are reported the same way per C-MOVE/C-GET.
"""

import asyncio
import logging
import os
import socket
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

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
from pacs.audit.sinks import Sink

log = logging.getLogger(__name__)


class Alert(StrEnum):
    """Why a Security Alert is raised."""

    ASSOCIATION_REFUSED = "association refused"
    TLS_FAILURE = "TLS failure"
    PERMISSION_DENIED = "permission denied"


# The EventTypeCode of each alert (PS3.15 A.5.3.11, CID 403).
ALERT_TYPES = {
    Alert.ASSOCIATION_REFUSED: EventType.NODE_AUTHENTICATION,
    Alert.TLS_FAILURE: EventType.NODE_AUTHENTICATION,
    Alert.PERMISSION_DENIED: EventType.USE_OF_RESTRICTED_FUNCTION,
}


@dataclass(slots=True)
class StudyTally:
    """Instances of one study counted by SOP Class, for an aggregated event."""

    patient_id: str
    sop_classes: Counter[str] = field(default_factory=Counter)

    def add(self, sop_class_uid: str) -> None:
        self.sop_classes[sop_class_uid] += 1

    def study(self, study_instance_uid: str) -> StudyObject:
        return StudyObject(
            study_instance_uid, self.patient_id, tuple(sorted(self.sop_classes.items()))
        )


class Transfer:
    """Tallies the instances one retrieve sends, and reports the beginning of each study."""

    def __init__(self, auditor: "Auditor", requestor: Node, destination: Node) -> None:
        self._auditor = auditor
        self.requestor = requestor
        self.destination = destination
        self.studies: dict[str, StudyTally] = {}

    def sending(self, study_instance_uid: str, patient_id: str) -> None:
        """An instance is about to go: the first of its study begins that study's transfer."""
        if study_instance_uid not in self.studies:
            self.studies[study_instance_uid] = StudyTally(patient_id)
            self._auditor.begin_transferring(self, StudyObject(study_instance_uid, patient_id))

    def sent(self, study_instance_uid: str, patient_id: str, sop_class_uid: str) -> None:
        """An instance was accepted by the destination (success or warning)."""
        self.studies.setdefault(study_instance_uid, StudyTally(patient_id)).add(sop_class_uid)

    def finished(self, failed: int, description: str = "") -> None:
        """Report each study's instances as transferred (minor failure when some failed)."""
        self._auditor.instances_sent(self, failed, description)


class Auditor:
    """Turns what happened into audit events and hands them to the sinks."""

    def __init__(self, ae_title: str, sinks: Sequence[Sink]) -> None:
        self.node = Node(ae_title, socket.gethostname())
        self._sinks = list(sinks)
        self._stored: dict[Hashable, tuple[Node, dict[str, StudyTally]]] = {}
        self._process = str(os.getpid())

    def start(self) -> None:
        """Start the sinks' threads; SinkUnavailable names the setting of one that cannot."""
        for sink in self._sinks:
            sink.start()

    async def close(self) -> None:
        """Report stores still tallied, deliver what is queued, stop the sinks' threads."""
        for key in list(self._stored):
            self.association_ended(key)
        for sink in self._sinks:
            await asyncio.to_thread(sink.close)

    def _emit(self, event: AuditEvent) -> None:
        try:
            for sink in self._sinks:
                sink.put(event)
        except Exception:  # the caller's operation goes on regardless
            log.exception("audit: event %s not queued", event.kind)

    def _us(self, role: Role | None, is_requestor: bool = False) -> Participant:
        return Participant(self.node, role, is_requestor, self._process)

    def _event(
        self,
        kind: EventKind,
        action: Action,
        outcome: Outcome,
        participants: tuple[Participant, ...],
        *,
        event_type: EventType | None = None,
        description: str = "",
        studies: tuple[StudyObject, ...] = (),
        query: QueryObject | None = None,
    ) -> None:
        event = AuditEvent(
            kind,
            action,
            outcome,
            participants,
            self.node.ae_title,
            event_type,
            description,
            studies,
            query,
        )
        self._emit(event)

    def application_started(self) -> None:
        self._application_activity(EventType.APPLICATION_START)

    def application_stopped(self) -> None:
        self._application_activity(EventType.APPLICATION_STOP)

    def _application_activity(self, event_type: EventType) -> None:
        self._event(
            EventKind.APPLICATION_ACTIVITY,
            Action.EXECUTE,
            Outcome.SUCCESS,
            participants=(self._us(Role.APPLICATION),),
            event_type=event_type,
        )

    def security_alert(self, peer: Node, alert: Alert, description: str) -> None:
        """A refused association, a failed TLS handshake, a permission denied: `description`
        says what was refused and why (it becomes EventOutcomeDescription)."""
        self._event(
            EventKind.SECURITY_ALERT,
            Action.EXECUTE,
            Outcome.MINOR_FAILURE,
            participants=(self._us(None), Participant(peer, None, is_requestor=True)),
            event_type=ALERT_TYPES[alert],
            description=f"{alert}: {description}",
        )

    def query(self, peer: Node, query: QueryObject, outcome: Outcome = Outcome.SUCCESS) -> None:
        """A C-FIND and its identifier, as received."""
        self._event(
            EventKind.QUERY,
            Action.EXECUTE,
            outcome,
            participants=(
                Participant(peer, Role.SOURCE, is_requestor=True),
                self._us(Role.DESTINATION),
            ),
            query=query,
        )

    def instance_stored(
        self, key: Hashable, peer: Node, study_uid: str, patient_id: str, sop_class_uid: str
    ) -> None:
        """Count one stored instance of the association `key` (reported when it ends)."""
        _, studies = self._stored.setdefault(key, (peer, {}))
        studies.setdefault(study_uid, StudyTally(patient_id)).add(sop_class_uid)

    def association_ended(self, key: Hashable) -> None:
        """Report the instances stored on association `key`, one event per study."""
        peer, studies = self._stored.pop(key, (None, {}))
        if peer is None:
            return
        participants = (Participant(peer, Role.SOURCE, True), self._us(Role.DESTINATION))
        for uid, tally in studies.items():
            self._event(
                EventKind.INSTANCES_TRANSFERRED,
                Action.CREATE,
                Outcome.SUCCESS,
                participants=participants,
                studies=(tally.study(uid),),
            )

    def transfer(self, requestor: Node, destination: Node) -> Transfer:
        """A C-MOVE (destination: the move destination) or C-GET (destination: requestor)."""
        return Transfer(self, requestor, destination)

    def _transfer_participants(self, transfer: Transfer) -> tuple[Participant, ...]:
        us = self._us(Role.SOURCE)
        if transfer.destination == transfer.requestor:  # C-GET
            return us, Participant(transfer.destination, Role.DESTINATION, True)
        return (
            us,
            Participant(transfer.destination, Role.DESTINATION, False),
            Participant(transfer.requestor, None, True),
        )

    def begin_transferring(self, transfer: Transfer, study: StudyObject) -> None:
        self._event(
            EventKind.BEGIN_TRANSFERRING,
            Action.EXECUTE,
            Outcome.SUCCESS,
            participants=self._transfer_participants(transfer),
            studies=(study,),
        )

    def instances_sent(self, transfer: Transfer, failed: int, description: str) -> None:
        outcome = Outcome.MINOR_FAILURE if failed else Outcome.SUCCESS
        for uid, tally in transfer.studies.items():
            self._event(
                EventKind.INSTANCES_TRANSFERRED,
                Action.READ,
                outcome,
                participants=self._transfer_participants(transfer),
                studies=(tally.study(uid),),
                description=description,
            )

    def instances_accessed(
        self,
        requestor: Node,
        studies: Iterable[StudyObject],
        failed: int = 0,
        description: str = "",
    ) -> None:
        """Storage Commitment: the requester had these instances checked (one event per study)."""
        outcome = Outcome.MINOR_FAILURE if failed else Outcome.SUCCESS
        participants = (Participant(requestor, None, True), self._us(None))
        for study in studies:
            self._event(
                EventKind.INSTANCES_ACCESSED,
                Action.READ,
                outcome,
                participants=participants,
                studies=(study,),
                description=description,
            )

    def study_deleted(self, requestor: Node, study: StudyObject, description: str = "") -> None:
        """A study removed from the archive, by whom (an operator command: pacs itself)."""
        self._event(
            EventKind.STUDY_DELETED,
            Action.DELETE,
            Outcome.SUCCESS,
            participants=(Participant(requestor, None, True), self._us(None)),
            studies=(study,),
            description=description,
        )

    def instances_deleted(self, requestor: Node, study: StudyObject, description: str = "") -> None:
        """Some of a study's instances removed (PS3.15 A.5.3.2, action Delete)."""
        self._event(
            EventKind.INSTANCES_ACCESSED,
            Action.DELETE,
            Outcome.SUCCESS,
            participants=(Participant(requestor, None, True), self._us(None)),
            studies=(study,),
            description=description,
        )
