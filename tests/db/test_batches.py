"""A batch writes what its records added one by one write, in a handful of statements."""

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.dialects import sqlite

from pacs.index.columns import instance_values
from pacs.index.engine import AsyncEngine, create_sessionmaker, create_sqlite_sync_engine
from pacs.index.records import (
    AddKind,
    AddOutcome,
    DuplicatePolicy,
    InstanceRecord,
    PatientColumns,
    SeriesColumns,
    StudyColumns,
)
from pacs.index.repository import Index
from pacs.index.schema import upgrade_to_head
from pacs.index.statements import execute_all_or_none
from pacs.index.upsert_sql import insert_instances
from pacs.store.blobstore import BlobRef
from pacs.threads import ThreadPools
from tests.conftest import ONLY_SQLITE

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
DUPLICATE_KIND = {
    DuplicatePolicy.KEEP: AddKind.KEPT_EXISTING,
    DuplicatePolicy.REPLACE: AddKind.REPLACED,
    DuplicatePolicy.REJECT: AddKind.REJECTED,
}


@pytest.fixture(params=["open", "sessionmaker"])
async def index(
    request: pytest.FixtureRequest, engine: AsyncEngine, thread_pools: ThreadPools
) -> AsyncIterator[Index]:
    """The Index as the app opens it (SQLite: writer thread), and on a sessionmaker alone."""
    await upgrade_to_head(engine)
    if request.param == "sessionmaker":
        yield Index(create_sessionmaker(engine))
        return
    index = Index.open(engine, thread_pools.index_writer)
    try:
        yield index
    finally:
        await index.close()


def blob(content: str) -> BlobRef:
    return BlobRef(hashlib.sha256(content.encode()).hexdigest(), len(content))


def record(
    ns: str,
    n: int,
    *,
    content: str = "",
    study: int = 1,
    series: int = 1,
    patient: str = "P1",
    patient_name: str = "Doe^Jane",
    patient_sex: str = "F",
    modality: str = "CT",
) -> InstanceRecord:
    """Instance n of a series in namespace ns (the first component of every UID and ID).

    Its file's content does not depend on ns, so that two namespaces hold the same files.
    """
    series_uid = f"{ns}.{study}.{series}"
    return InstanceRecord(
        patient=PatientColumns(
            f"{ns}-{patient}", "", patient_name, "19700101", patient_sex=patient_sex
        ),
        study=StudyColumns(f"{ns}.{study}", study_date="20240102", accession_number=""),
        series=SeriesColumns(series_uid, modality=modality, series_number=series),
        sop_instance_uid=f"{series_uid}.{n}",
        sop_class_uid=BASIC_TEXT_SR if modality == "SR" else CT_IMAGE,
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        blob=blob(f"{study}.{series}.{n}{content}"),
        instance_number=n,
        source_ae_title="MODALITY",
        instance_attrs={"00200013": {"vr": "IS", "Value": [n]}},
    )


def seeded(ns: str) -> list[InstanceRecord]:
    return [record(ns, n) for n in (1, 2, 3)]


def mixed(ns: str) -> list[InstanceRecord]:
    """New and known instances of one series, its study, another study of its patient and
    a new patient's study, some contradicting their patient."""
    return [
        record(ns, 1),  # identical to the indexed one
        record(ns, 4),
        record(ns, 2, content="other"),
        record(ns, 5, patient_name="Roe^John"),  # contradicts the study's patient
        record(ns, 4, content="again"),  # a duplicate of the batch's own
        record(ns, 1, series=2, modality="SR"),  # a new series in the study
        record(ns, 1, study=2),  # a new study of the same patient
        record(ns, 3, content="other"),
        record(ns, 6),
        record(ns, 1, study=3, patient="P2", patient_sex=""),  # a new patient, no sex
        record(ns, 2, study=3, patient="P2", patient_name="Roe^John"),
    ]


def neutral(outcomes: list[AddOutcome], ns: str) -> list[str]:
    return [repr(outcome).replace(ns, "NS") for outcome in outcomes]


async def hierarchy(engine: AsyncEngine, ns: str) -> list[tuple[Any, ...]]:
    """Every instance of namespace ns with its series, study and patient rows (no ids)."""
    sql = (
        "SELECT p.patient_id, p.patient_name, p.patient_birth_date, p.patient_sex,"
        " st.study_instance_uid, st.number_of_series, st.number_of_instances,"
        " st.modalities_in_study, st.sop_classes_in_study, st.accession_number,"
        " se.series_instance_uid, se.modality, se.number_of_instances,"
        " i.sop_instance_uid, i.sop_class_uid, i.blob_sha256, i.blob_size,"
        " i.instance_number, i.source_ae_title"
        " FROM instance i JOIN series se ON i.series_fk = se.id"
        " JOIN study st ON se.study_fk = st.id JOIN patient p ON st.patient_fk = p.id"
        f" WHERE p.patient_id LIKE '{ns}-%' ORDER BY i.sop_instance_uid"
    )
    async with engine.connect() as conn:
        found = await conn.exec_driver_sql(sql)
        return [
            tuple(v.replace(ns, "NS") if isinstance(v, str) else v for v in row) for row in found
        ]


@pytest.mark.parametrize("policy", list(DuplicatePolicy))
async def test_a_batch_writes_what_its_records_added_one_by_one_write(
    index: Index, engine: AsyncEngine, policy: DuplicatePolicy
) -> None:
    await index.add_instances(seeded("7.1"), policy)
    await index.add_instances(seeded("7.2"), policy)

    together = await index.add_instances(mixed("7.1"), policy)
    alone = [(await index.add_instances([r], policy))[0] for r in mixed("7.2")]

    duplicate = DUPLICATE_KIND[policy]
    assert [o.kind for o in together] == [
        AddKind.IDENTICAL,
        AddKind.STORED,
        duplicate,
        AddKind.STORED,
        duplicate,
        AddKind.STORED,
        AddKind.STORED,
        duplicate,
        AddKind.STORED,
        AddKind.STORED,
        AddKind.STORED,
    ]
    conflicts = [o.conflict is not None for o in together]
    assert conflicts == [False, False, False, True] + [False] * 6 + [True]
    assert neutral(together, "7.1") == neutral(alone, "7.2")
    assert await hierarchy(engine, "7.1") == await hierarchy(engine, "7.2")


def test_sqlite_keeps_a_statements_rows_only_when_every_one_went_in(tmp_path: Path) -> None:
    engine = create_sqlite_sync_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    assert engine is not None
    metadata = MetaData()
    keys = Table("keys", metadata, Column("key", String, unique=True))
    metadata.create_all(engine)
    insert = sqlite.insert(keys).on_conflict_do_nothing(index_elements=["key"])

    with engine.begin() as conn:
        assert execute_all_or_none(conn, insert, [{"key": "a"}, {"key": "b"}])
        assert not execute_all_or_none(conn, insert, [{"key": "c"}, {"key": "a"}])
        assert [key for (key,) in conn.exec_driver_sql("SELECT key FROM keys ORDER BY key")] == [
            "a",
            "b",
        ]
    engine.dispose()


@ONLY_SQLITE
async def test_instances_known_meanwhile_are_not_inserted_again(
    engine: AsyncEngine, database_url: str
) -> None:
    await upgrade_to_head(engine)
    await Index(create_sessionmaker(engine)).add_instances([record("7.1", 1)], "keep")
    write_engine = create_sqlite_sync_engine(database_url)
    assert write_engine is not None
    now = datetime.now(UTC)

    with write_engine.begin() as conn:
        series_fk = conn.exec_driver_sql("SELECT id FROM series").scalar()
        rows = [
            {"series_fk": series_fk, **instance_values(record("7.1", n), now)} for n in (2, 1, 3)
        ]
        inserted = insert_instances(conn, rows)
        count = conn.exec_driver_sql("SELECT count(*) FROM instance").scalar()
    write_engine.dispose()

    assert inserted == {"7.1.1.1.2", "7.1.1.1.3"}
    assert count == 3
