"""Engines and sessions for the index, with the SQLite settings durability needs."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine as _create_sync_engine
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from pacs.dicom import json_model

__all__ = [
    "SQLITE_BEGIN",
    "AsyncEngine",
    "AsyncSession",
    "PoolLimits",
    "async_sessionmaker",
    "create_engine",
    "create_read_engine",
    "create_sessionmaker",
    "create_sqlite_sync_engine",
]

# Execution option naming the BEGIN variant on SQLite: a writer asks for
# "IMMEDIATE" so it takes the write lock up front. A deferred transaction that
# reads first cannot upgrade to writing once another connection has committed
# (SQLITE_BUSY without waiting), which concurrent ingest would hit at once.
SQLITE_BEGIN = "pacs_sqlite_begin"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power
    # loss, and a C-STORE Success promises the instance survives that.
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
)


# asyncpg prepares every statement, and after five runs PostgreSQL may keep a generic
# plan made while the tables were nearly empty: sequential scans that it then keeps as
# the index grows, unless an ANALYZE (autovacuum, if it is on) invalidates them. Ingest
# on a fresh database fell from 120 to 37 instances/s by 90,000 instances; planning
# each run with its own values costs far less and uses the LIKE-prefix indexes too.
POSTGRES_SESSION_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


# The DICOM JSON columns are written and read with orjson (see pacs.dicom.json_model).
_JSON_CODEC = {"json_serializer": json_model.dumps, "json_deserializer": json_model.loads}


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """How many PostgreSQL connections an engine keeps, and how long it waits for one.

    `connect_timeout` bounds opening a connection: a server that cannot be reached
    must fail a store before the peer's DIMSE timeout, not after asyncpg's default
    of a minute. SQLite has one writer; its pool keeps SQLAlchemy's defaults.
    """

    size: int = 10
    max_overflow: int = 10
    timeout: float = 30.0
    connect_timeout: float = 10.0


def create_engine(url: str, limits: PoolLimits = PoolLimits()) -> AsyncEngine:
    """Create the index engine for a `sqlite+aiosqlite` or `postgresql+asyncpg` URL.

    On PostgreSQL durability of a commit is the server's `synchronous_commit`
    setting (on by default); pacs does not change it.
    """
    if _is_sqlite(url):
        # The pool (static for :memory:) keeps SQLAlchemy's defaults.
        engine = _create_async_engine(url, **_JSON_CODEC)
        _configure_sqlite(engine)
        return engine
    # A server restart or failover must not cost the first write after it.
    return _create_postgres_engine(url, limits, pool_pre_ping=True)


def create_read_engine(url: str, limits: PoolLimits = PoolLimits()) -> AsyncEngine | None:
    """Create the engine of the index's one-statement reads on PostgreSQL; None on SQLite
    (its reads run in reader threads, see `pacs.index.reads`).

    Each read is one SELECT, so it needs no transaction of its own (AUTOCOMMIT: no
    BEGIN and ROLLBACK round trips) and no ping before it (a read that meets a dropped
    connection is simply run again): together about a fifth of a 1-match C-FIND's
    time on the event loop.
    """
    if _is_sqlite(url):
        return None
    return _create_postgres_engine(url, limits, pool_pre_ping=False, isolation_level="AUTOCOMMIT")


def _is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _create_postgres_engine(url: str, limits: PoolLimits, **options: Any) -> AsyncEngine:
    return _create_async_engine(
        url,
        pool_size=limits.size,
        max_overflow=limits.max_overflow,
        pool_timeout=limits.timeout,
        connect_args={
            "timeout": limits.connect_timeout,
            "server_settings": POSTGRES_SESSION_SETTINGS,
        },
        **options,
        **_JSON_CODEC,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Create the session factory the index uses; objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def create_sqlite_sync_engine(url: str | URL) -> Engine | None:
    """Create a synchronous engine (stdlib sqlite3) on the SQLite file an async URL names.

    The index's writer thread runs whole write transactions on it (see
    `pacs.index.transactions`), its reader threads whole reads (`pacs.index.reads`).
    None for other databases, and for an in-memory database, which another engine
    could not share.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    engine = _create_sync_engine(parsed.set(drivername="sqlite+pysqlite"), **_JSON_CODEC)
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine | Engine) -> None:
    # SQLAlchemy emits BEGIN itself (the driver's own transaction handling is
    # switched off), which gives transactional DDL for migrations and lets a
    # writer choose BEGIN IMMEDIATE.
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    event.listen(sync_engine, "connect", _on_sqlite_connect)
    event.listen(sync_engine, "begin", _on_sqlite_begin)


def _on_sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    if mode not in {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}:
        raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
    connection.exec_driver_sql(f"BEGIN {mode}")


def prepare_sqlite_directory(url: str) -> None:
    """Create the directory of a SQLite database file, which SQLite will not do itself."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
