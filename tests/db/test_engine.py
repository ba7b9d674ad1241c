"""The index engine's connections are set up the way the write path and queries rely on."""

import pytest
from sqlalchemy import text

from pacs.index.engine import AsyncEngine


async def test_postgresql_plans_each_statement_with_its_own_values(engine: AsyncEngine) -> None:
    # A generic plan made while the tables were empty would keep sequential scans as the
    # archive grows (seen: ingest down to a third by 90,000 instances without ANALYZE).
    if engine.dialect.name != "postgresql":
        pytest.skip("plan caching of prepared statements is PostgreSQL's")
    async with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            mode = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
            assert mode == "force_custom_plan"
