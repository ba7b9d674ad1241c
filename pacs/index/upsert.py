"""One instance into the hierarchy: race-safe upserts and the study/series aggregates.

Rows are created with INSERT ... ON CONFLICT DO NOTHING followed by a SELECT,
so concurrent writers on PostgreSQL never fail on each other's new patient,
study or series: the loser waits for the winner's commit and then reads its row.
Parent rows keep the attributes of the instance that created them; a later
instance does not rewrite them (last-writer-wins between racing writers would be
arbitrary, and corrections are an administrative act, not a C-STORE).
"""

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from pacs.index.columns import (
    instance_values,
    patient_key,
    patient_values,
    series_values,
    study_values,
)
from pacs.index.models import Base, Instance, Patient, Series, Study
from pacs.index.records import AddKind, AddOutcome, DuplicatePolicy, InstanceRecord

log = logging.getLogger(__name__)

_DUPLICATE_KIND = {
    DuplicatePolicy.KEEP: AddKind.KEPT_EXISTING,
    DuplicatePolicy.REJECT: AddKind.REJECTED,
}


class _SeriesRef(NamedTuple):
    id: int
    study_fk: int
    modality: str | None


class _LockedStudy(NamedTuple):
    id: int
    modalities: str | None
    sop_classes: str | None


class _Existing(NamedTuple):
    id: int
    blob_sha256: str
    study_fk: int


def _with_value(joined: str | None, value: str | None) -> str | None:
    values = set(joined.split("\\")) if joined else set()
    if value:
        values.add(value)
    return "\\".join(sorted(values)) or None


class HierarchyWriter:
    """Adds records on a connection whose transaction the caller owns and commits.

    Lock order, to keep concurrent PostgreSQL writers out of deadlocks: new
    patients first (`prepare_patients`), then each study row (held until
    commit) before its series and instances; the caller sorts records by
    (study, series, instance) UID.
    """

    def __init__(self, conn: AsyncConnection, now: datetime) -> None:
        self._conn = conn
        self._now = now
        self._postgres = conn.dialect.name == "postgresql"
        self._patients: dict[tuple[str, str], int] = {}

    async def prepare_patients(self, records: Sequence[InstanceRecord]) -> None:
        """Find or create every patient of the batch up front, in key order.

        Inserting a patient row locks its key until commit. Taking those locks
        first and sorted, before any study lock, keeps concurrent batches from
        waiting on each other in a cycle. Not for savepoint-per-record batches:
        an id cached here could belong to a row a savepoint rolled back. A
        patient created for an instance that turns out to be a duplicate stays,
        without studies.
        """
        first: dict[tuple[str, str], InstanceRecord] = {}
        for record in records:
            first.setdefault(patient_key(record), record)
        for key in sorted(first):
            self._patients[key] = await self._ensure_patient(first[key])

    async def add(self, record: InstanceRecord, policy: DuplicatePolicy) -> AddOutcome:
        """Index one instance, or apply the duplicate policy when its UID is known."""
        uid = record.sop_instance_uid
        existing = await self._find_instance(uid)
        if existing is None:
            study, series, new_series = await self._lock_parents(record)
            values = {"series_fk": series.id, **instance_values(record, self._now)}
            stored = await self._insert_ignore(Instance, ["sop_instance_uid"], values)
            await self._count(study, series, new_series, record.sop_class_uid if stored else None)
            if stored:
                return AddOutcome(AddKind.STORED, uid)
            # A concurrent writer committed the same UID between our SELECT and INSERT.
            existing = await self._find_instance(uid)
            if existing is None:
                raise RuntimeError(f"instance {uid} neither inserted nor found")
        return await self._on_duplicate(existing, record, policy)

    async def _on_duplicate(
        self, existing: _Existing, record: InstanceRecord, policy: DuplicatePolicy
    ) -> AddOutcome:
        uid, previous = record.sop_instance_uid, existing.blob_sha256
        if record.blob.sha256 == previous:
            return AddOutcome(AddKind.IDENTICAL, uid, previous)
        if policy is not DuplicatePolicy.REPLACE:
            return AddOutcome(_DUPLICATE_KIND[policy], uid, previous)
        # The instance keeps its place in the hierarchy; only its file and
        # instance-level values change.
        study = await self._lock_study(existing.study_fk)
        values = instance_values(record, self._now)
        del values["sop_instance_uid"]
        await self._conn.execute(update(Instance).where(Instance.id == existing.id).values(values))
        await self._update_study(study, sop_class=record.sop_class_uid)
        return AddOutcome(AddKind.REPLACED, uid, previous)

    async def _count(
        self, study: _LockedStudy, series: _SeriesRef, new_series: bool, sop_class: str | None
    ) -> None:
        """Count a new series and, when sop_class is given, a new instance of it."""
        if sop_class is not None:
            await self._conn.execute(
                update(Series)
                .where(Series.id == series.id)
                .values(number_of_instances=Series.number_of_instances + 1)
            )
        await self._update_study(
            study,
            series_added=int(new_series),
            instances_added=int(sop_class is not None),
            modality=series.modality if sop_class is not None else None,
            sop_class=sop_class,
        )

    async def _update_study(
        self,
        study: _LockedStudy,
        *,
        series_added: int = 0,
        instances_added: int = 0,
        modality: str | None = None,
        sop_class: str | None = None,
    ) -> None:
        # Merging into the sets read under the row lock cannot lose a concurrent
        # writer's modality; the counts are increments for the same reason.
        await self._conn.execute(
            update(Study)
            .where(Study.id == study.id)
            .values(
                number_of_series=Study.number_of_series + series_added,
                number_of_instances=Study.number_of_instances + instances_added,
                modalities_in_study=_with_value(study.modalities, modality),
                sop_classes_in_study=_with_value(study.sop_classes, sop_class),
                updated_at=self._now,
            )
        )

    async def _lock_study(self, study_fk: int) -> _LockedStudy:
        query = (
            select(Study.id, Study.modalities_in_study, Study.sop_classes_in_study)
            .where(Study.id == study_fk)
            .with_for_update()  # SQLite has no row locks; its writer holds the database lock
        )
        return _LockedStudy(*(await self._conn.execute(query)).one())

    async def _lock_parents(self, record: InstanceRecord) -> tuple[_LockedStudy, _SeriesRef, bool]:
        """Find or create the record's series, its study locked; True when the series is new."""
        uid = record.series.series_instance_uid
        found = await self._series(uid)
        if found is not None:
            return await self._lock_study(found.study_fk), found, False
        study_fk = await self._ensure_study(record)
        study = await self._lock_study(study_fk)
        created = await self._insert_ignore(
            Series, ["series_instance_uid"], series_values(record, study_fk)
        )
        found = await self._series(uid)
        if found is None:
            raise RuntimeError(f"series {uid} neither inserted nor found")
        if found.study_fk != study_fk:
            log.warning("series %s belongs to another study; attaching instance to it", uid)
            study = await self._lock_study(found.study_fk)
        return study, found, created

    async def _ensure_study(self, record: InstanceRecord) -> int:
        uid = record.study.study_instance_uid
        query = select(Study.id, Study.patient_fk).where(Study.study_instance_uid == uid)
        patient_fk = self._patients.get(patient_key(record))
        if patient_fk is None:
            patient_fk = await self._ensure_patient(record)
        row = (await self._conn.execute(query)).one_or_none()
        if row is None:
            values = study_values(record, patient_fk, self._now)
            await self._insert_ignore(Study, ["study_instance_uid"], values)
            row = (await self._conn.execute(query)).one()
        if row.patient_fk != patient_fk:
            log.warning("study %s belongs to another patient; attaching series to it", uid)
        return int(row.id)

    async def _ensure_patient(self, record: InstanceRecord) -> int:
        columns = record.patient
        query = select(Patient.id).where(
            Patient.patient_id == columns.patient_id,
            Patient.issuer_of_patient_id == columns.issuer_of_patient_id,
        )
        # SELECT first: a conflicting INSERT still uses up a sequence value on PostgreSQL.
        found = (await self._conn.execute(query)).scalar_one_or_none()
        if found is not None:
            return int(found)
        values = patient_values(record)
        await self._insert_ignore(Patient, ["patient_id", "issuer_of_patient_id"], values)
        return int((await self._conn.execute(query)).scalar_one())

    async def _insert_ignore(
        self, model: type[Base], keys: list[str], values: dict[str, Any]
    ) -> bool:
        """INSERT unless a row with the same unique key exists; True when inserted."""
        insert = postgresql.insert if self._postgres else sqlite.insert
        statement = insert(model).values(values).on_conflict_do_nothing(index_elements=keys)
        return (await self._conn.execute(statement)).rowcount == 1

    async def _find_instance(self, uid: str) -> _Existing | None:
        query = (
            select(Instance.id, Instance.blob_sha256, Series.study_fk)
            .join(Series, Instance.series_fk == Series.id)
            .where(Instance.sop_instance_uid == uid)
        )
        row = (await self._conn.execute(query)).one_or_none()
        return None if row is None else _Existing(*row)

    async def _series(self, uid: str) -> _SeriesRef | None:
        query = select(Series.id, Series.study_fk, Series.modality).where(
            Series.series_instance_uid == uid
        )
        row = (await self._conn.execute(query)).one_or_none()
        return None if row is None else _SeriesRef(*row)
