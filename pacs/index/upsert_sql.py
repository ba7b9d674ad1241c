"""The SQL of the write path (see upsert): statements built once at import, and lookups.

Building a statement costs more than running it on SQLite; prebuilt ones with bound
parameters are compiled once and then come from SQLAlchemy's statement cache (or
statements' own). What a batch does once per instance (insert, replace) and once per
series or study (counts) is one statement for all of them: a multi-row INSERT or an
`executemany`.
"""

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Executable

from pacs.index.models import Base, Instance, Patient, Series, Study
from pacs.index.patients import PatientKey
from pacs.index.records import PatientColumns
from pacs.index.statements import (
    execute,
    execute_all_or_none,
    execute_each,
    execute_many,
    is_direct,
)

_PATIENT_COLUMNS = (
    Patient.patient_id,
    Patient.issuer_of_patient_id,
    Patient.patient_name,
    Patient.patient_birth_date,
    Patient.patient_sex,
)
FIND_INSTANCES = (
    select(Instance.sop_instance_uid, Instance.blob_sha256, Series.study_fk)
    .join(Series, Instance.series_fk == Series.id)
    .where(Instance.sop_instance_uid.in_(bindparam("b_uids", expanding=True)))
)
FIND_SERIES = select(Series.series_instance_uid, Series.id, Series.study_fk, Series.modality).where(
    Series.series_instance_uid.in_(bindparam("b_uids", expanding=True))
)
# The series with their study as LOCK_STUDY reads it, where a read is as good as a lock.
FIND_SERIES_AND_STUDIES = (
    select(
        Series.series_instance_uid,
        Series.id,
        Series.study_fk,
        Series.modality,
        Study.modalities_in_study,
        Study.sop_classes_in_study,
        *_PATIENT_COLUMNS,
    )
    .join(Study, Series.study_fk == Study.id)
    .join(Patient, Study.patient_fk == Patient.id)
    .where(Series.series_instance_uid.in_(bindparam("b_uids", expanding=True)))
)
FIND_STUDIES = select(Study.study_instance_uid, Study.id).where(
    Study.study_instance_uid.in_(bindparam("b_uids", expanding=True))
)
FIND_PATIENTS = select(Patient.id, Patient.scope_study_uid, *_PATIENT_COLUMNS).where(
    tuple_(Patient.patient_id, Patient.issuer_of_patient_id, Patient.scope_study_uid).in_(
        bindparam("b_keys", expanding=True)
    )
)
LOCK_STUDY = (
    select(Study.modalities_in_study, Study.sop_classes_in_study, *_PATIENT_COLUMNS)
    .join(Patient, Study.patient_fk == Patient.id)
    .where(Study.id == bindparam("b_id"))
    # Only the study: the patient row is read, never changed, by the write path.
    # SQLite has no row locks; its writer holds the database lock.
    .with_for_update(of=Study)
)
REPLACE_INSTANCE = update(Instance).where(Instance.sop_instance_uid == bindparam("b_uid"))
COUNT_SERIES = (
    update(Series)
    .where(Series.id == bindparam("b_id"))
    .values(number_of_instances=Series.number_of_instances + bindparam("b_instances"))
)
# Merging into the sets read under the row lock cannot lose a concurrent writer's
# modality; the counts are increments for the same reason.
COUNT_STUDY = (
    update(Study)
    .where(Study.id == bindparam("b_id"))
    .values(
        number_of_series=Study.number_of_series + bindparam("b_series"),
        number_of_instances=Study.number_of_instances + bindparam("b_instances"),
        modalities_in_study=bindparam("b_modalities"),
        sop_classes_in_study=bindparam("b_sop_classes"),
        updated_at=bindparam("b_now"),
    )
)


def _inserts_for(
    insert: Callable[[type[Base]], sqlite.Insert | postgresql.Insert],
) -> dict[type[Base], Executable]:
    """INSERT ... ON CONFLICT (unique key) DO NOTHING RETURNING the id (an instance's: UID)."""
    patient_key_columns = ["patient_id", "issuer_of_patient_id", "scope_study_uid"]
    return {
        Patient: insert(Patient)
        .on_conflict_do_nothing(index_elements=patient_key_columns)
        .returning(Patient.id),
        Study: insert(Study)
        .on_conflict_do_nothing(index_elements=["study_instance_uid"])
        .returning(Study.id),
        Series: insert(Series)
        .on_conflict_do_nothing(index_elements=["series_instance_uid"])
        .returning(Series.id),
        Instance: insert(Instance)
        .on_conflict_do_nothing(index_elements=["sop_instance_uid"])
        .returning(Instance.sop_instance_uid),
    }


INSERT_NEW = {"sqlite": _inserts_for(sqlite.insert), "postgresql": _inserts_for(postgresql.insert)}
# sqlite3's executemany drops what RETURNING returns: this one says only how many went in.
INSERT_INSTANCES_COUNTED = sqlite.insert(Instance).on_conflict_do_nothing(
    index_elements=["sop_instance_uid"]
)


class SeriesRef(NamedTuple):
    """A series row as the write path needs it (never changed once created)."""

    id: int
    study_fk: int
    modality: str | None


class LockedStudy(NamedTuple):
    """A study row read under its lock: its sets, and its patient's columns."""

    modalities: str | None
    sop_classes: str | None
    patient: PatientColumns


class CurrentFile(NamedTuple):
    """The file an instance UID points to now, and the study that counts it."""

    blob_sha256: str
    study_fk: int


def find_instances(conn: Connection, uids: set[str]) -> dict[str, CurrentFile]:
    """Return the indexed instances among uids, by UID."""
    rows = execute(conn, FIND_INSTANCES, {"b_uids": list(uids)})
    return {uid: CurrentFile(sha, study) for uid, sha, study in rows}


def find_series(conn: Connection, uids: set[str]) -> dict[str, SeriesRef]:
    """Return the indexed series among uids, by UID."""
    if not uids:
        return {}
    rows = execute(conn, FIND_SERIES, {"b_uids": list(uids)})
    return {uid: SeriesRef(id_, study, modality) for uid, id_, study, modality in rows}


def find_series_and_studies(
    conn: Connection, uids: set[str]
) -> tuple[dict[str, SeriesRef], dict[int, LockedStudy]]:
    """Return the indexed series among uids, by UID, and on SQLite their studies, by id,
    as lock_study would return them (on PostgreSQL none: a study is read under its lock).

    A SQLite writer holds the whole database's lock from its first statement, so what it
    reads stays as read until it changes it, and a read is as good as a locked one.
    """
    if conn.dialect.name != "sqlite":
        return find_series(conn, uids), {}
    if not uids:
        return {}, {}
    series: dict[str, SeriesRef] = {}
    studies: dict[int, LockedStudy] = {}
    for uid, id_, study, modality, modalities, sop_classes, *patient in execute(
        conn, FIND_SERIES_AND_STUDIES, {"b_uids": list(uids)}
    ):
        series[uid] = SeriesRef(id_, study, modality)
        studies[study] = LockedStudy(modalities, sop_classes, PatientColumns(*patient))
    return series, studies


def find_studies(conn: Connection, uids: set[str]) -> dict[str, int]:
    """Return the ids of the indexed studies among uids, by UID."""
    if not uids:
        return {}
    rows = execute(conn, FIND_STUDIES, {"b_uids": list(uids)})
    return {uid: id_ for uid, id_ in rows}


def find_patients(
    conn: Connection, keys: Iterable[PatientKey]
) -> dict[PatientKey, tuple[int, PatientColumns]]:
    """Return the ids and columns of the indexed patients among keys, by key."""
    rows = execute(conn, FIND_PATIENTS, {"b_keys": list(keys)})
    return {(row[2], row[3], row[1]): (row[0], PatientColumns(*row[2:])) for row in rows}


def insert_new(conn: Connection, model: type[Base], values: dict[str, Any]) -> int | None:
    """INSERT a patient, study or series unless its unique key exists; its id, else None."""
    created = execute(conn, INSERT_NEW[conn.dialect.name][model], values)
    return int(created[0][0]) if created else None


def insert_instances(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """INSERT instances in one statement, skipping known UIDs; return the UIDs that went in."""
    if not rows:
        return set()
    # On sqlite3 several rows go as one executemany, kept when every row went in: then
    # the count says which did. Otherwise (a UID known meanwhile) it is undone and the
    # rows go one by one, each RETURNING its UID when it goes in.
    many = len(rows) > 1 and is_direct(conn)
    if many and execute_all_or_none(conn, INSERT_INSTANCES_COUNTED, rows):
        return {row["sop_instance_uid"] for row in rows}
    return {uid for (uid,) in execute_each(conn, INSERT_NEW[conn.dialect.name][Instance], rows)}


class ParentRemoved(Exception):
    """A study the batch read was deleted before the batch could lock it (`pacs delete`
    committed in between, PostgreSQL): the batch is to run again from its reads."""


def lock_study(conn: Connection, study_id: int) -> LockedStudy:
    """Lock a study row until commit (PostgreSQL); return its sets and its patient."""
    rows = execute(conn, LOCK_STUDY, {"b_id": study_id})
    if not rows:
        raise ParentRemoved(f"study row {study_id} was deleted")
    ((modalities, sop_classes, *patient),) = rows
    return LockedStudy(modalities, sop_classes, PatientColumns(*patient))


def replace_instances(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Point indexed instances at other files, with those files' instance-level values
    (the columns of REPLACE_INSTANCE and b_uid, one set per instance, applied in order)."""
    execute_many(conn, REPLACE_INSTANCE, rows)


def count_series(conn: Connection, added: dict[int, int]) -> None:
    """Add instances to the counts of series, by series id."""
    rows = [{"b_id": i, "b_instances": n} for i, n in sorted(added.items())]
    execute_many(conn, COUNT_SERIES, rows)


def count_studies(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Update studies' counts and sets (the parameters of COUNT_STUDY, one set per study)."""
    execute_many(conn, COUNT_STUDY, rows)
