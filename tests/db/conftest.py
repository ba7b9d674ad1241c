"""Engines and indexes on the per-test databases of tests/conftest.py."""

from collections.abc import AsyncIterator

import pytest

from pacs.index.engine import AsyncEngine, create_engine, create_sessionmaker
from pacs.index.reads import Reads, open_reads
from pacs.index.repository import Index
from pacs.index.schema import upgrade_to_head
from pacs.threads import ThreadPools


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """pacs' engine on the empty test database, disposed after the test."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def reads(engine: AsyncEngine, thread_pools: ThreadPools) -> AsyncIterator[Reads]:
    """The index's reads on the test database as the server runs them (reader threads on
    SQLite), closed after the test."""
    reads = open_reads(engine, threads=thread_pools.index_readers)
    try:
        yield reads
    finally:
        await reads.close()


@pytest.fixture
async def index(engine: AsyncEngine) -> Index:
    """An Index on a database migrated to head."""
    await upgrade_to_head(engine)
    return Index(create_sessionmaker(engine))
