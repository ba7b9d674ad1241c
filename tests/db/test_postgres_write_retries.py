"""The PostgreSQL write path, whose statements run straight on asyncpg: the database's
errors still reach the batch as SQLAlchemy's, so its retries and refusals still work."""

import asyncio
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest

from pacs.index.engine import AsyncEngine, PoolLimits, create_sessionmaker
from pacs.index.records import AddKind
from pacs.index.repository import Index
from pacs.index.schema import upgrade_to_head
from pacs.threads import ThreadPools
from tests.conftest import ONLY_POSTGRESQL, _asyncpg_dsn
from tests.db.test_repository import kinds, record, rows

pytestmark = ONLY_POSTGRESQL

STUDY_A = "1.2.826.0.1.3680043.9.7.1"
STUDY_B = "1.2.826.0.1.3680043.9.7.2"
LOCK = "SELECT id FROM study WHERE study_instance_uid = $1 FOR UPDATE"


@pytest.fixture
async def index(engine: AsyncEngine) -> Index:
    await upgrade_to_head(engine)
    return Index(create_sessionmaker(engine))


@pytest.fixture
async def other_writer(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A second writer on the same database, outside pacs."""
    conn = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def _waiting_on_a_lock(conn: asyncpg.Connection) -> None:
    """Return once another backend waits for a row lock."""
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    while not await conn.fetchval(query):
        await asyncio.sleep(0)  # yield to the batch; each check is a round trip


async def test_a_batch_that_meets_a_deadlock_runs_again_and_counts_once(
    index: Index,
    engine: AsyncEngine,
    other_writer: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pacs.index.repository")
    first = [
        record("1.1.1", study_uid=STUDY_A, series_uid=f"{STUDY_A}.1"),
        record("1.1.2", study_uid=STUDY_B, series_uid=f"{STUDY_B}.1"),
    ]
    await index.add_instances(first, "keep")
    batch = [
        record("1.1.3", study_uid=STUDY_A, series_uid=f"{STUDY_A}.1"),
        record("1.1.4", study_uid=STUDY_B, series_uid=f"{STUDY_B}.1"),
    ]
    # The other writer takes B then A; the batch takes A then B. The batch starts waiting
    # first and detects the deadlock first (the other writer's detection is put off).
    await other_writer.execute("SET deadlock_timeout = '60s'")
    transaction = other_writer.transaction()
    await transaction.start()
    await other_writer.execute(LOCK, STUDY_B)
    adding = asyncio.create_task(index.add_instances(batch, "keep"))
    await _waiting_on_a_lock(other_writer)
    await other_writer.execute(LOCK, STUDY_A)  # waits until the batch has rolled back
    await transaction.commit()

    outcomes = await adding

    assert kinds(outcomes) == [AddKind.STORED, AddKind.STORED]
    retried = [r.getMessage() for r in caplog.records if "attempt 1 hit" in r.getMessage()]
    assert len(retried) == 1 and "deadlock detected" in retried[0]
    assert await rows(engine, "SELECT number_of_instances FROM study ORDER BY id") == [(2,), (2,)]
    assert await rows(engine, "SELECT number_of_instances FROM series ORDER BY id") == [(2,), (2,)]
    assert await index.count_instances() == 4


async def test_a_batch_on_a_connection_the_server_dropped_runs_again_on_a_new_one(
    engine: AsyncEngine, thread_pools: ThreadPools, other_writer: asyncpg.Connection
) -> None:
    # The writes' engine pings no connection before a batch; a restart or failover of
    # the server must still cost no store.
    await upgrade_to_head(engine)
    index = Index.open(engine, thread_pools.index_writer, PoolLimits(size=1, max_overflow=0))
    try:
        await index.add_instances([record("1.1.1")], "keep")
        dropped = await other_writer.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert dropped >= 1

        outcomes = await index.add_instances([record("1.1.2"), record("1.1.3")], "keep")

        assert kinds(outcomes) == [AddKind.STORED, AddKind.STORED]
        assert await index.count_instances() == 3
        assert await rows(engine, "SELECT number_of_instances FROM study") == [(3,)]
        assert await rows(engine, "SELECT number_of_instances FROM series") == [(3,)]
    finally:
        await index.close()
