"""Databases for the index tests: a SQLite file, and a fresh PostgreSQL database per test."""

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from pacs.index.engine import AsyncEngine, create_engine, create_sessionmaker
from pacs.index.repository import Index
from pacs.index.schema import upgrade_to_head

POSTGRES_URL = os.environ.get(
    "PACS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _asyncpg_dsn(url: str) -> str:
    # asyncpg speaks libpq URLs: drop SQLAlchemy's "+asyncpg" driver suffix.
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+")[0]))


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """URL of an empty database, dropped (or left in tmp_path) after the test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'index.db'}"
        return
    name = f"pacs_test_{uuid.uuid4().hex[:16]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """pacs' engine on the empty test database, disposed after the test."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def index(engine: AsyncEngine) -> Index:
    """An Index on a database migrated to head."""
    await upgrade_to_head(engine)
    return Index(create_sessionmaker(engine))
