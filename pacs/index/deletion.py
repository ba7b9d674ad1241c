"""Removing patients, studies, series or instances from the index (`pacs delete`).

In two steps: `plan` reads which instance rows a selection names now; `remove` deletes
exactly those rows in one transaction, then the series, studies and patients left
without children, and recounts the rest. An instance that a running server stores into
the same series or study after the plan is not among the planned rows: it stays, and so
do its parents. Blob files are not touched; `pacs gc` collects them.

Lock order is the write path's (`pacs.index.upsert`): the study rows first, in Study
Instance UID order, then the instances, and the patient rows last. A batch that met a
study removed meanwhile starts again (`upsert_sql.ParentRemoved`); one whose new study refers to a
patient removed meanwhile is refused by the foreign key and redone record by record.
"""

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import delete, exists, func, join, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pacs.index.database_errors import index_errors
from pacs.index.engine import SQLITE_BEGIN
from pacs.index.models import Instance, Patient, Series, SeriesMetadata, Study

CHUNK = 500  # ids per IN list: below both databases' limits on bound parameters
ATTEMPTS = 5
# Deadlock and serialization failures (PostgreSQL): the transaction did nothing.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


class Level(StrEnum):
    """What a selection names."""

    PATIENT = "patient"
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


@dataclass(frozen=True, slots=True)
class Selection:
    """A patient (by Patient ID and Issuer), or a study, series or instance by UID."""

    level: Level
    key: str
    issuer: str = ""


@dataclass(frozen=True, slots=True)
class PlannedStudy:
    """A study some planned instances belong to, and how many of each SOP Class go."""

    id: int
    study_instance_uid: str
    patient_id: str
    sop_classes: tuple[tuple[str, int], ...]
    whole: bool  # every instance the study held when planned


@dataclass(frozen=True, slots=True)
class DeletionPlan:
    """The instance rows a selection names, and what holds them. No patient names."""

    selection: Selection
    instance_uids: tuple[str, ...]
    series: int
    studies: tuple[PlannedStudy, ...]
    patients: int

    @property
    def empty(self) -> bool:
        return not self.instance_uids


@dataclass(frozen=True, slots=True)
class Removed:
    """What one deletion took out of the index."""

    instances: int
    series: int
    studies: int
    patients: int


_ROWS = (
    select(
        Instance.sop_instance_uid,
        Instance.sop_class_uid,
        Series.id,
        Study.id,
        Study.study_instance_uid,
        Patient.id,
        Patient.patient_id,
    )
    .join(Series, Instance.series_fk == Series.id)
    .join(Study, Series.study_fk == Study.id)
    .join(Patient, Study.patient_fk == Patient.id)
)
_WHERE = {
    Level.STUDY: lambda s: Study.study_instance_uid == s.key,
    Level.SERIES: lambda s: Series.series_instance_uid == s.key,
    Level.INSTANCE: lambda s: Instance.sop_instance_uid == s.key,
    Level.PATIENT: lambda s: (
        (Patient.patient_id == s.key)
        & (Patient.issuer_of_patient_id == s.issuer)
        & (Patient.scope_study_uid == "")
    ),
}
_WRITE = {SQLITE_BEGIN: "IMMEDIATE"}
T = TypeVar("T")


class Deletions:
    """Plans and carries out deletions on the index database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def plan(self, selection: Selection) -> DeletionPlan:
        """Read the instance rows the selection names (no locks, nothing changed)."""
        with index_errors():
            async with self._engine.connect() as conn:
                rows = (await conn.execute(_ROWS.where(_WHERE[selection.level](selection)))).all()
                study_ids = sorted({row[3] for row in rows})
                totals = await _instances_per_study(conn, study_ids)
        return _plan(selection, rows, totals)

    async def remove(self, plan: DeletionPlan) -> Removed:
        """Delete the planned instances and the parents left empty, in one transaction.

        A deadlock with a concurrent store (PostgreSQL) undoes it all; it runs again.
        """
        with index_errors():
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    return await self._remove(plan)
                except DBAPIError as exc:
                    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
                    if attempt == ATTEMPTS or sqlstate not in _TRANSIENT_SQLSTATES:
                        raise
        raise AssertionError("unreachable")

    async def _remove(self, plan: DeletionPlan) -> Removed:
        async with self._engine.connect() as plain:
            conn = await plain.execution_options(**_WRITE)
            async with conn.begin():
                return await conn.run_sync(_remove, plan)


async def _instances_per_study(conn: AsyncConnection, study_ids: Sequence[int]) -> dict[int, int]:
    """How many instances each study holds now, by study id."""
    totals: dict[int, int] = {}
    for start in range(0, len(study_ids), CHUNK):
        chunk = study_ids[start : start + CHUNK]
        query = (
            select(Series.study_fk, func.count())
            .select_from(join(Instance, Series, Instance.series_fk == Series.id))
            .where(Series.study_fk.in_(chunk))
            .group_by(Series.study_fk)
        )
        totals.update({int(k): int(n) for k, n in (await conn.execute(query)).all()})
    return totals


def _plan(
    selection: Selection,
    rows: Sequence[Row[str, str, int, int, str, int, str]],
    totals: dict[int, int],
) -> DeletionPlan:
    per_study: dict[int, tuple[str, str, Counter[str]]] = {}
    series, patients = set(), set()
    for _, sop_class, series_id, study_id, study_uid, patient_fk, patient_id in rows:
        series.add(series_id)
        patients.add(patient_fk)
        per_study.setdefault(study_id, (study_uid, patient_id, Counter()))[2][sop_class] += 1
    studies = tuple(
        PlannedStudy(
            study_id,
            uid,
            patient_id,
            tuple(sorted(classes.items())),
            sum(classes.values()) == totals.get(study_id, 0),
        )
        for study_id, (uid, patient_id, classes) in sorted(per_study.items(), key=lambda i: i[1][0])
    )
    uids = tuple(sorted(str(row[0]) for row in rows))
    return DeletionPlan(selection, uids, len(series), studies, len(patients))


def _remove(conn: Connection, plan: DeletionPlan) -> Removed:
    """The transaction: lock studies, delete instances, prune and recount upwards."""
    study_ids = []
    for study in plan.studies:  # in Study Instance UID order, as the write path locks
        locked = conn.execute(
            select(Study.id).where(Study.id == study.id).with_for_update()
        ).first()
        if locked is not None:
            study_ids.append(study.id)
    series_ids: set[int] = set()
    instances = 0
    # By UID: a row id SQLite gave a deleted row may be given again to a new one.
    for chunk in _chunks(plan.instance_uids):
        planned = Instance.sop_instance_uid.in_(chunk)
        series_ids.update(conn.execute(select(Instance.series_fk).where(planned)).scalars())
        instances += conn.execute(delete(Instance).where(planned)).rowcount
    series = sum(_prune_series(conn, chunk) for chunk in _chunks(sorted(series_ids)))
    patient_ids = set(
        conn.execute(select(Study.patient_fk).where(Study.id.in_(study_ids))).scalars()
    )
    studies = sum(_prune_studies(conn, chunk) for chunk in _chunks(study_ids))
    patients = 0
    for patient_id in sorted(patient_ids):
        patients += _remove_patient_if_empty(conn, patient_id)
    return Removed(instances, series, studies, patients)


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _prune_series(conn: Connection, series_ids: Sequence[int]) -> int:
    """Delete the series left without instances, recount the others; return how many went.
    Their kept WADO-RS metadata goes too (it would be rebuilt anyway: the series changed)."""
    uids = select(Series.series_instance_uid).where(Series.id.in_(series_ids))
    conn.execute(delete(SeriesMetadata).where(SeriesMetadata.series_instance_uid.in_(uids)))
    has_instances = exists().where(Instance.series_fk == Series.id)
    removed = conn.execute(delete(Series).where(Series.id.in_(series_ids), ~has_instances)).rowcount
    count = select(func.count()).where(Instance.series_fk == Series.id).scalar_subquery()
    conn.execute(update(Series).where(Series.id.in_(series_ids)).values(number_of_instances=count))
    return int(removed)


def _prune_studies(conn: Connection, study_ids: Sequence[int]) -> int:
    """Delete the studies left without series; recount the others and their sets."""
    removed = conn.execute(
        delete(Study).where(Study.id.in_(study_ids), ~exists().where(Series.study_fk == Study.id))
    ).rowcount
    for study_id in study_ids:
        modalities = conn.execute(
            select(Series.modality).where(Series.study_fk == study_id, Series.modality.is_not(None))
        ).scalars()
        sop_classes = conn.execute(
            select(Instance.sop_class_uid)
            .join(Series, Instance.series_fk == Series.id)
            .where(Series.study_fk == study_id)
            .distinct()
        ).scalars()
        series = select(func.count()).where(Series.study_fk == study_id).scalar_subquery()
        instances = (
            select(func.count())
            .select_from(join(Instance, Series, Instance.series_fk == Series.id))
            .where(Series.study_fk == study_id)
            .scalar_subquery()
        )
        conn.execute(
            update(Study)
            .where(Study.id == study_id)
            .values(
                number_of_series=series,
                number_of_instances=instances,
                modalities_in_study=_joined(modalities),
                sop_classes_in_study=_joined(sop_classes),
                updated_at=datetime.now(UTC),
            )
        )
    return int(removed)


def _joined(values: Iterable[str | None]) -> str | None:
    # As the write path keeps them: sorted, backslash-joined, NULL while empty.
    return "\\".join(sorted({value for value in values if value})) or None


def _remove_patient_if_empty(conn: Connection, patient_id: int) -> int:
    """Delete a patient left without studies; 0 when a store gave it one meanwhile."""
    try:
        with conn.begin_nested():
            has_studies = exists().where(Study.patient_fk == Patient.id)
            return int(
                conn.execute(delete(Patient).where(Patient.id == patient_id, ~has_studies)).rowcount
            )
    except IntegrityError:  # a concurrent store's new study refers to it (PostgreSQL)
        return 0
