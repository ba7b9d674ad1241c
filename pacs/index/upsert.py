"""A batch of instances into the hierarchy: race-safe upserts and the study/series aggregates.

Synchronous SQLAlchemy Core on a Connection whose transaction the caller owns, so that one
piece of code runs in SQLite's writer thread and, through `run_sync`, on asyncpg.

Rows are created with INSERT ... ON CONFLICT DO NOTHING RETURNING; when nothing comes back a
concurrent writer on PostgreSQL won the race: the loser waited for the winner's commit and
reads its row. Parent rows keep the attributes of the instance that created them; a later
instance does not rewrite them (last-writer-wins between racing writers would be arbitrary,
and corrections are an administrative act, not a C-STORE). A new instance whose patient
attributes contradict its study's patient row is reported in its outcome (see patients).

Statements go per batch, not per instance: one lookup per level, one row lock per
study, one creation per new patient, study and series, and for the instances one INSERT,
one UPDATE of those replaced, and one of the counts of each level, all rows at once.

Lock order, which keeps concurrent PostgreSQL writers out of deadlocks: first the patients
the batch has to create, in key order; then each study row (held until commit), in the order
of the records sorted by (study, series, instance) UID, before any of its series; the
instances last, in that same order. The reads before all this take no locks.
"""

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pacs.index import upsert_sql as sql
from pacs.index.columns import (
    instance_values,
    patient_columns,
    patient_values,
    series_values,
    study_values,
)
from pacs.index.models import Patient, Series, Study
from pacs.index.patients import PatientKey, contradicts, patient_key
from pacs.index.records import (
    AddKind,
    AddOutcome,
    DuplicatePolicy,
    InstanceRecord,
    PatientColumns,
    PatientConflict,
)

log = logging.getLogger(__name__)

_DUPLICATE_KIND = {
    DuplicatePolicy.KEEP: AddKind.KEPT_EXISTING,
    DuplicatePolicy.REJECT: AddKind.REJECTED,
}


@dataclass(slots=True)
class _StudyTally:
    """A locked study: its sets and patient as read under the lock, and what the batch adds."""

    modalities: str | None
    sop_classes: str | None
    patient: PatientColumns
    series_added: int = 0
    instances_added: int = 0
    changed: bool = False
    new_modalities: set[str] = field(default_factory=set)
    new_sop_classes: set[str] = field(default_factory=set)

    def params(self, study_id: int, now: datetime) -> dict[str, Any]:
        return {
            "b_id": study_id,
            "b_series": self.series_added,
            "b_instances": self.instances_added,
            "b_modalities": _merged(self.modalities, self.new_modalities),
            "b_sop_classes": _merged(self.sop_classes, self.new_sop_classes),
            "b_now": now,
        }


def _merged(joined: str | None, values: set[str]) -> str | None:
    merged = set(joined.split("\\")) if joined else set()
    return "\\".join(sorted(merged | values)) or None


def lock_order(records: Sequence[InstanceRecord]) -> list[int]:
    """Return the indexes of records in the order their rows are locked: by study, series, UID."""

    def key(i: int) -> tuple[str, str, str]:
        r = records[i]
        return (r.study.study_instance_uid, r.series.series_instance_uid, r.sop_instance_uid)

    return sorted(range(len(records)), key=key)


def add_batch(
    conn: Connection, records: Sequence[InstanceRecord], policy: DuplicatePolicy, now: datetime
) -> list[AddOutcome]:
    """Index records in the transaction open on conn; outcomes in input order.

    A UID given twice meets the duplicate policy against the first (in lock order).
    """
    return _BatchWriter(conn, now).add(records, policy)


class _BatchWriter:
    """One batch: looks up what exists, locks and creates parents, then inserts and counts."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now
        self._current: dict[str, sql.CurrentFile] = {}
        self._patients: dict[PatientKey, tuple[int, PatientColumns]] = {}
        self._studies: dict[str, int] = {}
        self._series: dict[str, sql.SeriesRef] = {}
        self._read_studies: dict[int, sql.LockedStudy] = {}  # as good as locked (SQLite)
        self._locked: dict[int, _StudyTally] = {}
        self._series_counts: Counter[int] = Counter()
        self._replacements: list[dict[str, Any]] = []
        self._contradicting: dict[tuple[PatientColumns, PatientColumns], bool] = {}

    def add(self, records: Sequence[InstanceRecord], policy: DuplicatePolicy) -> list[AddOutcome]:
        order = lock_order(records)
        self._current = sql.find_instances(self._conn, {r.sop_instance_uid for r in records})
        new: dict[str, int] = {}  # UID -> the record that inserts it
        for i in order:
            if records[i].sop_instance_uid not in self._current:
                new.setdefault(records[i].sop_instance_uid, i)
        self._prepare_parents([records[i] for i in new.values()])
        for i in order:
            self._lock_for(records[i], new.get(records[i].sop_instance_uid) == i, policy)
        stored = self._insert_instances([records[i] for i in new.values()])
        outcomes: dict[int, AddOutcome] = {}
        for i in order:
            uid = records[i].sop_instance_uid
            if new.get(uid) == i and uid in stored:
                outcomes[i] = self._count_stored(records[i])
            else:
                outcomes[i] = self._on_duplicate(records[i], policy)
        self._write_changes()
        return [outcomes[i] for i in range(len(records))]

    def _prepare_parents(self, records: list[InstanceRecord]) -> None:
        """Read the series, studies and patients new instances need; create missing patients."""
        uids = {r.series.series_instance_uid for r in records}
        self._series, self._read_studies = sql.find_series_and_studies(self._conn, uids)
        orphans = [r for r in records if r.series.series_instance_uid not in self._series]
        self._studies = sql.find_studies(self._conn, {r.study.study_instance_uid for r in orphans})
        homeless = [r for r in orphans if r.study.study_instance_uid not in self._studies]
        self._ensure_patients(homeless)

    def _lock_for(self, record: InstanceRecord, inserts: bool, policy: DuplicatePolicy) -> None:
        """Lock the study the record will change, creating its study and series if it is new."""
        if inserts:
            series = self._series.get(record.series.series_instance_uid)
            if series is None:
                self._create_series(record)
            else:
                self._lock_study(series.study_fk)
            return
        current = self._current.get(record.sop_instance_uid)
        replaces = policy is DuplicatePolicy.REPLACE
        if current is not None and replaces and current.blob_sha256 != record.blob.sha256:
            self._lock_study(current.study_fk)

    def _create_series(self, record: InstanceRecord) -> None:
        uid = record.series.series_instance_uid
        study_fk = self._ensure_study(record)
        values = series_values(record, study_fk)
        created = sql.insert_new(self._conn, Series, values)
        if created is not None:
            tally = self._locked[study_fk]
            tally.series_added += 1
            tally.changed = True
            self._series[uid] = sql.SeriesRef(created, study_fk, values["modality"])
            return
        found = sql.find_series(self._conn, {uid}).get(uid)
        if found is None:
            raise RuntimeError(f"series {uid} neither inserted nor found")
        if found.study_fk != study_fk:
            log.warning("series %s belongs to another study; attaching instance to it", uid)
            self._lock_study(found.study_fk)
        self._series[uid] = found

    def _ensure_study(self, record: InstanceRecord) -> int:
        uid = record.study.study_instance_uid
        found = self._studies.get(uid)
        if found is None:
            patient_fk, patient = self._patients[patient_key(record)]
            values = study_values(record, patient_fk, self._now)
            created = sql.insert_new(self._conn, Study, values)
            if created is not None:
                self._locked[created] = _StudyTally(None, None, patient)
                self._studies[uid] = created
                return created
            found = sql.find_studies(self._conn, {uid}).get(uid)
            if found is None:
                raise RuntimeError(f"study {uid} neither inserted nor found")
            self._studies[uid] = found
        self._lock_study(found)
        return found

    def _ensure_patients(self, records: Iterable[InstanceRecord]) -> None:
        """Find or create the patients of records, creating in key order (see the lock order)."""
        first: dict[PatientKey, InstanceRecord] = {}
        for record in records:
            first.setdefault(patient_key(record), record)
        if not first:
            return
        # SELECT first: a conflicting INSERT still uses up a sequence value on PostgreSQL.
        self._patients = sql.find_patients(self._conn, first)
        for key in sorted(first.keys() - self._patients.keys()):
            created = sql.insert_new(self._conn, Patient, patient_values(first[key]))
            if created is None:
                self._patients[key] = sql.find_patients(self._conn, [key])[key]
            else:
                self._patients[key] = (created, patient_columns(first[key]))

    def _lock_study(self, study_id: int) -> None:
        if study_id not in self._locked:
            locked = self._read_studies.get(study_id) or sql.lock_study(self._conn, study_id)
            self._locked[study_id] = _StudyTally(*locked)

    def _insert_instances(self, records: list[InstanceRecord]) -> set[str]:
        """INSERT the new instances in one statement; return the UIDs that went in."""
        rows = [
            {
                "series_fk": self._series[r.series.series_instance_uid].id,
                **instance_values(r, self._now),
            }
            for r in records
        ]
        return sql.insert_instances(self._conn, rows)

    def _count_stored(self, record: InstanceRecord) -> AddOutcome:
        uid = record.sop_instance_uid
        series = self._series[record.series.series_instance_uid]
        tally = self._locked[series.study_fk]
        tally.instances_added += 1
        tally.changed = True
        if series.modality:
            tally.new_modalities.add(series.modality)
        tally.new_sop_classes.add(record.sop_class_uid)
        self._series_counts[series.id] += 1
        self._current[uid] = sql.CurrentFile(record.blob.sha256, series.study_fk)
        return AddOutcome(AddKind.STORED, uid, conflict=self._conflict(record, tally.patient))

    def _conflict(self, record: InstanceRecord, kept: PatientColumns) -> PatientConflict | None:
        # A batch's instances mostly repeat a few patients: compare each pair once.
        pair = (kept, record.patient)
        contradicting = self._contradicting.get(pair)
        if contradicting is None:
            contradicting = self._contradicting[pair] = contradicts(*pair)
        if not contradicting:
            return None
        return PatientConflict(record.study.study_instance_uid, kept, record.patient)

    def _on_duplicate(self, record: InstanceRecord, policy: DuplicatePolicy) -> AddOutcome:
        uid = record.sop_instance_uid
        current = self._current.get(uid)
        if current is None:
            # A concurrent writer committed the same UID between our SELECT and INSERT.
            current = sql.find_instances(self._conn, {uid}).get(uid)
            if current is None:
                raise RuntimeError(f"instance {uid} neither inserted nor found")
        previous = current.blob_sha256
        self._current[uid] = current
        if record.blob.sha256 == previous:
            return AddOutcome(AddKind.IDENTICAL, uid, previous)
        if policy is not DuplicatePolicy.REPLACE:
            return AddOutcome(_DUPLICATE_KIND[policy], uid, previous)
        # The instance keeps its place in the hierarchy; only its file and
        # instance-level values change.
        self._lock_study(current.study_fk)  # already held unless the UID raced in
        values = instance_values(record, self._now)
        values["b_uid"] = values.pop("sop_instance_uid")
        self._replacements.append(values)  # written with the counts, in lock order
        tally = self._locked[current.study_fk]
        tally.changed = True
        tally.new_sop_classes.add(record.sop_class_uid)
        self._current[uid] = current._replace(blob_sha256=record.blob.sha256)
        return AddOutcome(AddKind.REPLACED, uid, previous)

    def _write_changes(self) -> None:
        """The replaced instances, then the counts and sets of series and studies."""
        sql.replace_instances(self._conn, self._replacements)
        sql.count_series(self._conn, self._series_counts)
        studies = sorted((i, t) for i, t in self._locked.items() if t.changed)
        sql.count_studies(self._conn, [t.params(i, self._now) for i, t in studies])
