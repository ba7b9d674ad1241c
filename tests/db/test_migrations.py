"""Alembic migrations on SQLite and PostgreSQL: upgrade, downgrade, revision checks."""

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect as sa_inspect

from pacs.errors import SchemaError
from pacs.index.engine import AsyncEngine, create_engine
from pacs.index.models import TRIGRAM_INDEX, Base
from pacs.index.schema import (
    alembic_config,
    check_schema,
    current_revision,
    ensure_schema,
    upgrade_to_head,
)
from tests.conftest import ONLY_POSTGRESQL, ONLY_SQLITE

HEAD = "0006"
CATALOGUE = {"patient", "study", "series", "instance"}


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: sync.dialect.get_table_names(sync))
    return set(names)


async def test_upgrade_to_head_creates_the_catalogue(engine: AsyncEngine) -> None:
    await upgrade_to_head(engine)

    assert await table_names(engine) >= CATALOGUE
    assert await current_revision(engine) == HEAD
    await check_schema(engine)


async def test_upgrade_twice_is_a_no_op(engine: AsyncEngine) -> None:
    await upgrade_to_head(engine)
    await upgrade_to_head(engine)

    assert await current_revision(engine) == HEAD


async def test_downgrade_to_base_drops_the_catalogue(engine: AsyncEngine) -> None:
    await upgrade_to_head(engine)

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))

    assert not CATALOGUE & await table_names(engine)
    assert await current_revision(engine) is None


async def test_alembic_command_with_a_url_config_migrates(
    database_url: str, engine: AsyncEngine
) -> None:
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", database_url)

    # env.py runs its own event loop for a URL, so it must not run on this one.
    await asyncio.to_thread(command.upgrade, config, "head")

    assert await table_names(engine) >= CATALOGUE


async def test_models_match_the_migrations(engine: AsyncEngine) -> None:
    await upgrade_to_head(engine)

    def declared(_object: object, name: str | None, kind: str, *_: object) -> bool:
        return not (kind == "index" and name == TRIGRAM_INDEX)  # exists only with pg_trgm

    def differences(sync: object) -> list[object]:
        opts = {"compare_type": True, "include_object": declared}
        context = MigrationContext.configure(sync, opts=opts)  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_check_schema_refuses_an_empty_database(engine: AsyncEngine) -> None:
    with pytest.raises(SchemaError, match="no schema"):
        await check_schema(engine)


async def test_check_schema_refuses_a_revision_it_does_not_know(engine: AsyncEngine) -> None:
    await upgrade_to_head(engine)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffffffffffff'")

    with pytest.raises(SchemaError, match=r"ffffffffffff.*does not know"):
        await check_schema(engine)


async def test_ensure_schema_migrates_a_fresh_database(engine: AsyncEngine) -> None:
    await ensure_schema(engine)

    await check_schema(engine)


async def test_ensure_schema_refuses_a_newer_schema(engine: AsyncEngine) -> None:
    await upgrade_to_head(engine)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffffffffffff'")

    with pytest.raises(SchemaError, match="does not know"):
        await ensure_schema(engine)


async def _migrate(engine: AsyncEngine, verb: str, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: getattr(command, verb)(alembic_config(sync), revision))


MERGED_PATIENT = (
    "INSERT INTO patient (patient_id, issuer_of_patient_id, patient_name, attributes) "
    "VALUES ('', '', 'First^Person', '{}'), ('P1', '', 'Other^Person', '{}')"
)
THREE_STUDIES = (
    "INSERT INTO study (patient_fk, study_instance_uid, attributes, created_at, updated_at,"
    " number_of_series, number_of_instances)"
    " SELECT p.id, s.uid, '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, 0"
    " FROM patient p JOIN (SELECT '' AS pid, '1.2.1' AS uid UNION ALL SELECT '', '1.2.2'"
    " UNION ALL SELECT 'P1', '1.2.3') s ON p.patient_id = s.pid"
)
PATIENT_OF_STUDY = (
    "SELECT s.study_instance_uid, p.patient_id, p.scope_study_uid, p.patient_name"
    " FROM study s JOIN patient p ON s.patient_fk = p.id ORDER BY s.study_instance_uid"
)


async def test_upgrade_gives_each_study_of_a_patient_without_id_its_own_patient(
    engine: AsyncEngine,
) -> None:
    await _migrate(engine, "upgrade", "0002")
    async with engine.begin() as conn:
        await conn.exec_driver_sql(MERGED_PATIENT)
        await conn.exec_driver_sql(THREE_STUDIES)

    await _migrate(engine, "upgrade", "head")

    async with engine.connect() as conn:
        rows = (await conn.exec_driver_sql(PATIENT_OF_STUDY)).all()
        patients = (await conn.exec_driver_sql("SELECT count(*) FROM patient")).scalar_one()
    assert [tuple(r) for r in rows] == [
        ("1.2.1", "", "1.2.1", "First^Person"),
        ("1.2.2", "", "1.2.2", "First^Person"),
        ("1.2.3", "P1", "", "Other^Person"),
    ]
    assert patients == 3  # the shared row is gone


async def test_downgrade_merges_patients_without_id_again(engine: AsyncEngine) -> None:
    await _migrate(engine, "upgrade", "0002")
    async with engine.begin() as conn:
        await conn.exec_driver_sql(MERGED_PATIENT)
        await conn.exec_driver_sql(THREE_STUDIES)
    await _migrate(engine, "upgrade", "head")

    await _migrate(engine, "downgrade", "0002")

    async with engine.connect() as conn:
        fks = (
            await conn.exec_driver_sql("SELECT patient_fk FROM study ORDER BY study_instance_uid")
        ).all()
        patients = (await conn.exec_driver_sql("SELECT count(*) FROM patient")).scalar_one()
    assert len({fk for (fk,) in fks[:2]}) == 1
    assert patients == 2


TRIGRAM_PLAN = "EXPLAIN SELECT id FROM patient WHERE patient_name_folded LIKE '%SMI%'"
INDEXES_OF_PATIENT = "SELECT indexname FROM pg_indexes WHERE tablename = 'patient'"


@ONLY_POSTGRESQL
async def test_leading_wildcard_name_search_uses_trigrams_on_postgresql(
    engine: AsyncEngine,
) -> None:
    await upgrade_to_head(engine)

    async with engine.begin() as conn:
        # On an empty table a scan is cheapest; forbid it to see whether the index serves.
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(row[0] for row in await conn.exec_driver_sql(TRIGRAM_PLAN))
    assert TRIGRAM_INDEX in plan


@ONLY_POSTGRESQL
async def test_downgrade_drops_the_trigram_index(engine: AsyncEngine) -> None:
    await upgrade_to_head(engine)

    await _migrate(engine, "downgrade", "0003")

    async with engine.connect() as conn:
        names = {row[0] for row in await conn.exec_driver_sql(INDEXES_OF_PATIENT)}
    assert "ix_patient_patient_name_folded" in names
    assert TRIGRAM_INDEX not in names


@ONLY_SQLITE
async def test_sqlite_gets_no_trigram_index(engine: AsyncEngine) -> None:
    await upgrade_to_head(engine)

    async with engine.connect() as conn:
        names = await conn.run_sync(
            lambda sync: {i["name"] for i in sa_inspect(sync).get_indexes("patient")}
        )
    assert "ix_patient_patient_name_folded" in names
    assert TRIGRAM_INDEX not in names


@ONLY_POSTGRESQL
async def test_without_rights_to_create_pg_trgm_the_migration_leaves_the_index_out(
    database_url: str,
) -> None:
    role = f"pacs_test_role_{uuid.uuid4().hex[:12]}"
    database = urlsplit(database_url).path.lstrip("/")
    await _admin(database_url, f'CREATE ROLE "{role}" LOGIN')
    # Tables may be made in public; the database itself grants no CREATE, so no extension.
    await _admin(database_url, f'GRANT CREATE ON SCHEMA public TO "{role}"')
    url = urlunsplit(urlsplit(database_url)._replace(netloc=f"{role}@127.0.0.1:5432"))
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)

        assert await current_revision(engine) == HEAD
        async with engine.connect() as conn:
            names = {row[0] for row in await conn.exec_driver_sql(INDEXES_OF_PATIENT)}
        assert "ix_patient_patient_name_folded" in names
        assert TRIGRAM_INDEX not in names
    finally:
        await engine.dispose()
        await _admin(database_url, f'DROP OWNED BY "{role}"')
        await _admin(database_url.replace(f"/{database}", "/postgres"), f'DROP ROLE "{role}"')


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
