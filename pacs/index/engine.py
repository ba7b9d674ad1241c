"""Engines and sessions for the index, with the SQLite settings durability needs."""

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine as _create_sync_engine
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from pacs.dicom import json_model
from pacs.errors import StoreUnavailable
from pacs.index.database_errors import reason

__all__ = [
    "SQLITE_BEGIN",
    "AsyncEngine",
    "AsyncSession",
    "PoolLimits",
    "async_sessionmaker",
    "check_connection",
    "create_engine",
    "create_read_engine",
    "create_sessionmaker",
    "create_sqlite_sync_engine",
    "prepare_sqlite_directory",
    "sqlite_file",
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


# PostgreSQL's SQLSTATE for "database does not exist" (PostgreSQL docs, Appendix A).
_INVALID_CATALOG_NAME = "3D000"

# asyncpg prepares every statement, and after five runs PostgreSQL may keep a generic
# plan made while the tables were nearly empty: sequential scans that it then keeps as
# the index grows, unless an ANALYZE (autovacuum, if it is on) invalidates them, and
# ingest slows as the archive grows. Planning each run with its own values costs far
# less and uses the LIKE-prefix indexes too.
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
    connection is simply run again): round trips a short C-FIND would otherwise wait on.
    """
    if _is_sqlite(url):
        return None
    return _create_postgres_engine(url, limits, pool_pre_ping=False, isolation_level="AUTOCOMMIT")


def create_write_engine(url: str | URL, limits: PoolLimits = PoolLimits()) -> AsyncEngine | None:
    """Create the engine of the index's batch writes on PostgreSQL; None on SQLite (its
    writes run in the writer thread, see `pacs.index.transactions`).

    No ping before each batch (three round trips on the loop, more than a batch's own
    statements cost): a batch that meets a connection the server dropped runs again on
    a new one (`PostgresTransactions`).
    """
    if _is_sqlite(url):
        return None
    return _create_postgres_engine(url, limits, pool_pre_ping=False)


def _is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _create_postgres_engine(url: str | URL, limits: PoolLimits, **options: Any) -> AsyncEngine:
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


def sqlite_file(url: str) -> Path | None:
    """The database file a SQLite URL names; None for other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def prepare_sqlite_directory(url: str) -> None:
    """Create the directory of a SQLite database file, which SQLite will not do itself.

    StoreUnavailable says which directory cannot be created and why.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    directory = Path(parsed.database).parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        blocker = next(path for path in (directory, *directory.parents) if path.exists())
        raise StoreUnavailable(
            f"cannot create directory {directory} for the SQLite database: "
            f"{blocker} is not a directory"
        ) from exc
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot create directory {exc.filename or directory} for the SQLite database: "
            f"{exc.strerror or exc}"
        ) from exc


async def check_connection(engine: AsyncEngine) -> None:
    """Open one connection to the index database; StoreUnavailable names it and says why not.

    Run before anything else touches the database, so that a server that is down, a
    database that does not exist or a SQLite file that cannot be created is one clear
    sentence at start-up rather than a driver's traceback.
    """
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
    except (DBAPIError, OSError) as exc:
        raise StoreUnavailable(f"cannot open {_describe(engine.url)}: {_cause(exc)}") from exc


def _describe(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"the SQLite database {url.database}"
    host = url.host or url.query.get("host") or "localhost"
    return f"PostgreSQL database {url.database!r} on {host}:{url.port or 5432}"


def _cause(exc: BaseException) -> str:
    """What went wrong, with the usual remedy where the cause is a common one."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == _INVALID_CATALOG_NAME:
        return f"{reason(exc)} (create it, e.g. with createdb, or correct the name)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running and listening there?)"
    if isinstance(exc, socket.gaierror):
        return f"the host name does not resolve ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return "no answer within [database] connect_timeout"
    return reason(exc)
