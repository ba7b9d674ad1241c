"""The index engine's connections and JSON columns are set up the way the write path and
queries rely on."""

import math
from typing import Any

from sqlalchemy import ColumnClause, literal, literal_column, select, text, type_coerce

from pacs.index.engine import AsyncEngine, PoolLimits, create_engine, create_read_engine
from pacs.index.models import DICOM_JSON
from pacs.index.reads import open_reads
from pacs.threads import ThreadPools
from tests.conftest import ONLY_POSTGRESQL, ONLY_SQLITE


@ONLY_POSTGRESQL  # plan caching of prepared statements is PostgreSQL's
async def test_postgresql_plans_each_statement_with_its_own_values(engine: AsyncEngine) -> None:
    # A generic plan made while the tables were empty would keep sequential scans as the
    # archive grows.
    async with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            mode = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
            assert mode == "force_custom_plan"


async def _round_trip(engine: AsyncEngine, value: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(literal(value, DICOM_JSON)))).scalar_one()


async def test_dicom_json_keeps_an_integer_beyond_64_bits(engine: AsyncEngine) -> None:
    # A malformed IS can be that long; the index must still take the instance (orjson
    # cannot write it, the standard library can; it reads back as a number of that value).
    element = {"00201208": {"vr": "IS", "Value": [2**70]}}

    assert await _round_trip(engine, element) == element


async def test_dicom_json_writes_nan_as_null(engine: AsyncEngine) -> None:
    # NaN is no JSON value: PostgreSQL's JSONB refuses it, so it is stored as null.
    element = {"00180050": {"vr": "DS", "Value": [float("nan")]}}

    assert await _round_trip(engine, element) == {"00180050": {"vr": "DS", "Value": [None]}}


@ONLY_SQLITE  # only SQLite ever stored the standard library's NaN
async def test_dicom_json_reads_nan_as_older_sqlite_rows_hold_it(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        sql = """'{"00180050": {"vr": "DS", "Value": [NaN]}}'"""
        stored: ColumnClause[str] = literal_column(sql)
        value: Any = (await conn.execute(select(type_coerce(stored, DICOM_JSON)))).scalar_one()

    assert math.isnan(value["00180050"]["Value"][0])


@ONLY_POSTGRESQL  # SQLite reads run in reader threads on a file: no server to drop them
async def test_reads_run_again_on_a_connection_the_server_dropped(
    database_url: str, thread_pools: ThreadPools
) -> None:
    # The read engine pings no connection before using it; a restart or failover of the
    # server must still cost no C-FIND (a read is one SELECT, so it is simply repeated).
    read_engine = create_read_engine(database_url, PoolLimits(size=1, max_overflow=0))
    assert read_engine is not None
    engine = create_engine(database_url)
    reads = open_reads(engine, read_engine, threads=thread_pools.index_readers)
    try:
        first = await reads.all(select(text("pg_backend_pid()")))
        async with engine.connect() as admin:
            await admin.execute(text(f"SELECT pg_terminate_backend({first[0][0]})"))

        again = await reads.all(select(text("pg_backend_pid()")))

        assert again[0][0] != first[0][0]
    finally:
        await reads.close()
        await engine.dispose()
