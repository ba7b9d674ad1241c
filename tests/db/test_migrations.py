"""Alembic migrations on SQLite and PostgreSQL: upgrade, downgrade, revision checks."""

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pacs.errors import SchemaError
from pacs.index.engine import AsyncEngine
from pacs.index.models import Base
from pacs.index.schema import (
    alembic_config,
    check_schema,
    current_revision,
    ensure_schema,
    upgrade_to_head,
)

HEAD = "0002"
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

    def differences(sync: object) -> list[object]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})  # type: ignore[arg-type]
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
