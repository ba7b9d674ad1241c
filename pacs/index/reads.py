"""Where the index's hot reads run: SQLite reader threads on sqlite3, or the async engine.

C-FIND and retrieve read a page of rows per statement. Through aiosqlite every
step of a statement (checkout, BEGIN, cursor, execute, fetch, rollback) would be a
round trip between the event loop and aiosqlite's thread. A reader
thread runs the whole statement on a sqlite3 connection of its own (WAL lets
readers run beside the writer) and hands back buffered rows: one hop there and
one back; a statement built once and kept (a C-FIND's, `run`) skips SQLAlchemy's
execute too and goes straight to sqlite3 (`statements.execute`). On asyncpg a
statement is a network round trip awaited on the loop, so a Core connection of
the async engine serves.
"""

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol, TypeVarTuple

from sqlalchemy import Row, Select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from pacs.index.database_errors import index_errors
from pacs.index.engine import create_sqlite_sync_engine
from pacs.index.statements import execute

__all__ = ["EngineReads", "Reads", "SqliteReaderThreads", "open_reads"]

Ts = TypeVarTuple("Ts")
PositionalRows = Sequence[Sequence[Any]]  # Rows, or the driver's own tuples

# Rows are read by position only. Without this, every run of a statement rebuilt from
# the compiled cache re-keys the cached result map by the new statement's columns,
# comparing ORM columns with SQL operators, on every read. (The ORM
# sets the same option for its own statements.)
_POSITIONAL = {"_result_disable_adapt_to_context": True}


class Reads(Protocol):
    """Runs one read-only SELECT per call, never sharing a transaction with another and
    holding none open between calls (pages); StoreUnavailable on database failure.

    On a SQLite file the statement runs in a reader thread on its own sqlite3 connection:
    `run` straight on sqlite3 outside any transaction (one SELECT reads one snapshot),
    `all` through SQLAlchemy, which wraps it in a BEGIN and ROLLBACK of its own. On
    PostgreSQL it runs on a connection of the read engine, in AUTOCOMMIT (no BEGIN at
    all); with no read engine (an in-memory SQLite) on the index engine, in a transaction
    of its own.
    """

    async def all(self, statement: Select[*Ts]) -> Sequence[Row[*Ts]]: ...

    async def run(self, statement: Select[Any], params: Mapping[str, Any]) -> PositionalRows:
        """Run a statement built once and kept (every bind parameter named in params)."""
        ...

    async def close(self) -> None: ...


class EngineReads:
    """Each statement on a Core connection of the async engine, checked out for it alone.

    A statement that meets a connection the server has dropped (a restart, a failover,
    an idle timeout) runs once more on a new one: a read may simply be repeated, so the
    engine need not ping every connection it checks out (see `create_read_engine`).
    """

    def __init__(self, engine: AsyncEngine, *, owned: bool = False) -> None:
        """Read through engine; dispose of it on close() when owned."""
        self._engine = engine
        self._owned = owned

    async def all(self, statement: Select[*Ts]) -> Sequence[Row[*Ts]]:
        return await self._read(statement, {})

    async def run(self, statement: Select[Any], params: Mapping[str, Any]) -> PositionalRows:
        return await self._read(statement, params)

    async def _read(self, statement: Select[*Ts], params: Mapping[str, Any]) -> Sequence[Row[*Ts]]:
        with index_errors():
            try:
                return await self._once(statement, params)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                return await self._once(statement, params)

    async def _once(self, statement: Select[*Ts], params: Mapping[str, Any]) -> Sequence[Row[*Ts]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(statement, dict(params), execution_options=_POSITIONAL)
            return result.all()

    async def close(self) -> None:
        """Dispose of the engine if it is this object's own."""
        if self._owned:
            await self._engine.dispose()


class SqliteReaderThreads:
    """Each statement run whole in one of a few reader threads, on a synchronous engine.

    `threads` belongs to whoever created it (`pacs.threads`), who shuts it down.
    """

    def __init__(self, engine: Engine, threads: Executor) -> None:
        self._engine = engine
        self._threads = threads
        self._closed = False

    async def all(self, statement: Select[*Ts]) -> Sequence[Row[*Ts]]:
        with index_errors():
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._threads, self._all, statement)

    def _all(self, statement: Select[*Ts]) -> Sequence[Row[*Ts]]:
        with self._engine.connect() as conn:
            return conn.execute(statement, execution_options=_POSITIONAL).all()

    async def run(self, statement: Select[Any], params: Mapping[str, Any]) -> PositionalRows:
        with index_errors():
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._threads, self._run, statement, params)

    def _run(self, statement: Select[Any], params: Mapping[str, Any]) -> PositionalRows:
        # Straight on sqlite3, and outside any transaction: one SELECT reads one snapshot.
        with self._engine.connect() as conn:
            return execute(conn, statement, params)

    async def close(self) -> None:
        """Close the connections. Call it once the reader threads have ended: a connection
        still in use by a running read would be left to the garbage collector."""
        if self._closed:
            return
        self._closed = True
        self._engine.dispose()


def open_reads(
    engine: AsyncEngine, read_engine: AsyncEngine | None = None, *, threads: Executor
) -> Reads:
    """Reader `threads` for a SQLite file; otherwise (PostgreSQL, :memory:) read_engine, which
    the Reads then own, or else the engine itself. close() it before disposing of engine."""
    sync_engine = create_sqlite_sync_engine(engine.url)
    if sync_engine is not None:
        return SqliteReaderThreads(sync_engine, threads)
    if read_engine is not None:
        return EngineReads(read_engine, owned=True)
    return EngineReads(engine)
