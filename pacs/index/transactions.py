"""Where the index's write transactions run: SQLite's one writer thread, or the async engine.

A write is a synchronous function of a Connection (SQLAlchemy Core), run whole inside one
transaction that commits when it returns. On SQLite through aiosqlite every statement would
be a round trip between the event loop and aiosqlite's thread; running the whole transaction
in one thread on a sqlite3 engine makes it one hop there and one back. On asyncpg a
statement is a cheap network round trip awaited on the loop, so `run_sync` serves, on
an engine of the writes' own that pings no connection before a batch.
"""

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pacs.index.engine import SQLITE_BEGIN

T = TypeVar("T")

# A writer takes SQLite's write lock up front (see engine.SQLITE_BEGIN); on
# other databases the option means nothing.
_WRITE_OPTIONS = {SQLITE_BEGIN: "IMMEDIATE"}


# What a write waits for before it commits: work done elsewhere that its rows describe
# (the stored files of the instances it indexes). One that fails rolls the write back.
Prerequisites = Sequence[Future[Any]]


class WriteTransactions(Protocol):
    """Runs a write in a transaction of its own and returns once that has committed.

    The transaction commits only after every prerequisite has succeeded; the first
    one that fails rolls it back and its exception is raised.
    """

    async def run(
        self, work: Callable[[Connection], T], prerequisites: Prerequisites = ()
    ) -> T: ...

    async def close(self) -> None: ...


class SessionTransactions:
    """Each write in one AsyncSession transaction, the synchronous code through run_sync."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def run(self, work: Callable[[Connection], T], prerequisites: Prerequisites = ()) -> T:
        """Run work on the session's connection; return after the commit."""
        async with self._sessionmaker() as session, session.begin():
            conn = await session.connection(execution_options=_WRITE_OPTIONS)
            result = await conn.run_sync(work)
            await _all_succeeded(prerequisites)
            return result

    async def close(self) -> None:
        """Nothing to release: the engine belongs to whoever created it."""


class PostgresTransactions:
    """Each write in one transaction on a connection of the writes' own engine, which
    pings no connection before using it (`engine.create_write_engine`).

    A write that meets a connection the server dropped (a restart, a failover) before
    its commit was sent did nothing: it runs again once, on a new connection. One that
    loses its connection during the commit is in doubt and fails, as it would anyway.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def run(self, work: Callable[[Connection], T], prerequisites: Prerequisites = ()) -> T:
        """Run work on a connection of the engine; return after the commit."""
        try:
            return await self._transaction(work, prerequisites, again=True)
        except _DroppedBeforeCommit:
            return await self._transaction(work, prerequisites, again=False)

    async def _transaction(
        self, work: Callable[[Connection], T], prerequisites: Prerequisites, again: bool
    ) -> T:
        async with self._engine.connect() as conn, conn.begin():
            try:
                result = await conn.run_sync(work)
            except DBAPIError as exc:
                if again and exc.connection_invalidated:
                    raise _DroppedBeforeCommit from exc
                raise
            await _all_succeeded(prerequisites)
        return result

    async def close(self) -> None:
        """Close the engine's connections (the engine is this object's own)."""
        await self._engine.dispose()


class _DroppedBeforeCommit(Exception):
    """The connection was found dropped before the transaction's commit was sent."""


def _when_all_done(pending: Sequence[Future[Any]], signal: Callable[[], object]) -> None:
    """Call `signal` once, in the thread that finishes the last of `pending` (none may
    be done yet): one wake-up for a batch rather than one per stored file."""
    remaining = len(pending)
    lock = threading.Lock()

    def one_done(_: Future[Any]) -> None:
        nonlocal remaining
        with lock:
            remaining -= 1
            if remaining:
                return
        signal()

    for prerequisite in pending:
        prerequisite.add_done_callback(one_done)


async def _all_succeeded(prerequisites: Prerequisites) -> None:
    """Wait on the loop for every prerequisite; then raise the first one's failure."""
    pending = [prerequisite for prerequisite in prerequisites if not prerequisite.done()]
    if pending:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        _when_all_done(pending, lambda: loop.call_soon_threadsafe(_settle, waiter))
        await waiter
    for prerequisite in prerequisites:
        prerequisite.result()


def _wait_for_all(prerequisites: Prerequisites) -> None:
    """Block until every prerequisite is done."""
    pending = [prerequisite for prerequisite in prerequisites if not prerequisite.done()]
    if pending:
        all_done = threading.Event()
        _when_all_done(pending, all_done.set)
        all_done.wait()


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class SqliteWriterThread:
    """Each write in one transaction on a synchronous SQLite engine, in one dedicated thread.

    SQLite admits one writer at a time anyway; queueing writes for one thread keeps
    them from waiting on each other's lock in busy_timeout and keeps the connection
    in the thread that uses it. `thread` is a single-thread executor that whoever
    created it shuts down after close() (`pacs.threads`). A write whose caller is
    cancelled still runs to its commit or rollback: a transaction never stops halfway.
    """

    def __init__(self, engine: Engine, thread: Executor) -> None:
        self._engine = engine
        self._thread = thread
        self._closed = False

    async def run(self, work: Callable[[Connection], T], prerequisites: Prerequisites = ()) -> T:
        """Run work in the writer thread; return after the commit."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._transaction, work, prerequisites)

    def _transaction(self, work: Callable[[Connection], T], prerequisites: Prerequisites) -> T:
        with self._engine.connect() as conn:
            conn.execution_options(**_WRITE_OPTIONS)
            with conn.begin():
                result = work(conn)
                _wait_for_all(prerequisites)
                for prerequisite in prerequisites:
                    prerequisite.result()
                return result

    async def close(self) -> None:
        """Finish the queued writes, then close the connections in the writer thread."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._thread, self._engine.dispose)
