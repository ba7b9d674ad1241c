"""Write generated index rows (benchmarks.scale_rows) straight into a pacs database.

The schema comes from pacs's own Alembic migrations (pacs.index.schema), so the
tables and indexes are the ones a server would have made. Rows then go in as
fast as each database takes them: `executemany` on SQLite (synchronous=OFF for the
load only; the server sets its own pragmas when it opens the file), COPY on
PostgreSQL, after which the id sequences are moved past the rows and the tables
analysed (as autovacuum would soon do on a live server).
"""

import asyncio
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from benchmarks.scale_rows import COLUMNS, Rows
from pacs.index.engine import create_engine
from pacs.index.schema import upgrade_to_head


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


def migrate(url: str) -> None:
    """Create (or bring to head) the pacs schema at `url` with pacs's migrations."""
    asyncio.run(_migrate(url))


def _sqlite_time(rows: list[tuple[object, ...]], table: str) -> list[tuple[object, ...]]:
    # SQLAlchemy's SQLite DateTime stores this text; the raw driver would store isoformat.
    timed = [
        n for n, c in enumerate(COLUMNS[table]) if c in {"created_at", "updated_at", "received_at"}
    ]
    if not timed:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for n in timed:
            values[n] = f"{values[n]:%Y-%m-%d %H:%M:%S.%f}"
        out.append(tuple(values))
    return out


def load_sqlite(path: Path, batches: Iterable[Rows]) -> int:
    """Insert every batch into the SQLite file at `path`; return the instances written."""
    conn = sqlite3.connect(path)
    written = 0
    try:
        conn.execute("PRAGMA synchronous=OFF")
        for rows in batches:
            with conn:
                for table, names in COLUMNS.items():
                    values = _sqlite_time(getattr(rows, table), table)
                    marks = ", ".join("?" * len(names))
                    statement = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"
                    conn.executemany(statement, values)
            written += len(rows)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return written


# A batch takes about a second; a server that stops answering (restarted under us) must
# end the load with an error rather than leave it waiting forever.
BATCH_TIMEOUT = 600.0


async def _load_postgres(dsn: str, batches: Iterable[Rows]) -> int:
    import asyncpg  # noqa: PLC0415 (only the PostgreSQL target needs it)

    conn = await asyncpg.connect(dsn, timeout=60)
    written = 0
    try:
        for rows in batches:
            async with conn.transaction():
                for table, names in COLUMNS.items():
                    records = getattr(rows, table)
                    if records:
                        await conn.copy_records_to_table(
                            table, records=records, columns=names, timeout=BATCH_TIMEOUT
                        )
            written += len(rows)
        for table in COLUMNS:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
            await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()
    return written


def load_postgres(url: str, batches: Iterable[Rows]) -> int:
    """COPY every batch into the database at `url` (an SQLAlchemy asyncpg URL)."""
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return asyncio.run(_load_postgres(dsn, batches))
