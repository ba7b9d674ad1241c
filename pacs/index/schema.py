"""The index schema version: migrate to head with Alembic, refuse schemas this code lacks."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import pacs
from pacs.errors import SchemaError

# The Alembic scripts ship inside the package (package data, see pyproject.toml), so
# they are found the same way in a checkout, an editable install and a wheel. Alembic
# needs a directory on disk, which an installed wheel is.
MIGRATIONS_DIR = Path(pacs.__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Build an Alembic config for pacs' migrations, bound to a connection when given."""
    config = Config()
    # Alembic options go through ConfigParser interpolation, where '%' is special.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        # pacs/migrations/env.py runs on this connection instead of opening its own engine.
        config.attributes["connection"] = connection
    return config


# Key of the PostgreSQL advisory lock that one migrating process holds at a time.
MIGRATION_LOCK = 0x7061_6373  # "pacs"


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Apply every migration this code knows, in one transaction where the database allows.

    On PostgreSQL several processes or hosts may start at once on one database: each
    takes an advisory lock first, held until its transaction ends, so one migrates and
    the others then find the schema at head. SQLite's writer lock does the same there.
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def current_revision(engine: AsyncEngine) -> str | None:
    """Return the revision the database is stamped with; None when it has no schema yet."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current_revision)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def check_schema(engine: AsyncEngine) -> None:
    """Raise SchemaError unless the database is at the head revision this code knows."""
    revision = await current_revision(engine)
    scripts = ScriptDirectory.from_config(alembic_config())
    head = scripts.get_current_head()
    if revision == head:
        return
    if revision is None:
        raise SchemaError(f"the index database has no schema; run `pacs db upgrade` (to {head})")
    known = {script.revision for script in scripts.walk_revisions()}
    if revision not in known:
        raise SchemaError(
            f"the index database is at revision {revision}, which this version of pacs "
            f"does not know (newest known: {head}); it was probably migrated by a newer "
            "pacs: upgrade pacs, or restore a matching backup"
        )
    raise SchemaError(
        f"the index database is at revision {revision}, older than {head}; run `pacs db upgrade`"
    )


async def ensure_schema(engine: AsyncEngine) -> None:
    """Bring a fresh or older database to head; refuse one migrated by a newer pacs.

    A database already at head is left alone: no Alembic run, and no lines in the log.
    """
    revision = await current_revision(engine)
    scripts = ScriptDirectory.from_config(alembic_config())
    if revision == scripts.get_current_head():
        return
    if revision is not None and revision not in {s.revision for s in scripts.walk_revisions()}:
        await check_schema(engine)  # raises SchemaError naming the unknown revision
    await upgrade_to_head(engine)
