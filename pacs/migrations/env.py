"""Alembic environment for the pacs index: its own async engine, or a connection pacs hands in.

The database URL is `sqlalchemy.url` from the Alembic config when set, else the
PACS_DATABASE_URL environment variable. pacs itself (pacs.index.schema) passes
an open connection in `config.attributes["connection"]` so migrations run on
the application's engine, inside the caller's transaction.
"""

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from pacs.index.engine import create_engine
from pacs.index.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and "connection" not in config.attributes:
    # Only when run as the `alembic` command: inside pacs, logging is the app's.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    """Return the URL to migrate, or explain where it should come from."""
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("PACS_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or PACS_DATABASE_URL")
    return url


def run_migrations_offline() -> None:
    """Emit the migrations as SQL for review, without a database."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on a synchronous connection (the async engine's, via run_sync)."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # pacs' SQLite engine emits BEGIN itself, so SQLite DDL is transactional
        # too and a failed migration leaves no half-built schema behind.
        transactional_ddl=True,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    """Open pacs' own engine (with its SQLite settings) for the configured URL."""
    engine = create_engine(database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Use the connection handed in, else an engine of our own."""
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
