"""Statements run straight on the asyncpg connection, from the synchronous write path.

The write path is synchronous Core code that runs on PostgreSQL inside `run_sync`, where
every `Connection.execute` passes through SQLAlchemy's execution context, its asyncpg
adapter's cursor and its result objects: several times what the round trip itself costs
on the loop. Here a statement compiled once (`statements`) goes to the asyncpg connection
under the adapter, awaited from the greenlet as the adapter awaits: `fetch` (asyncpg
prepares a statement once per connection and keeps it in its statement cache), and
`executemany` / `fetchmany` for many parameter sets, one round trip for all of them.

The transaction stays the adapter's: it is begun as the adapter would begin it on its
first statement, so SQLAlchemy's commit and rollback end it and its savepoints nest in it.
asyncpg's errors are raised as SQLAlchemy's (IntegrityError, DBAPIError with the
SQLSTATE, `connection_invalidated` for a dropped connection), as `Connection.execute`
would raise them.
"""

from collections.abc import Sequence
from typing import Any, NoReturn

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.util import await_

Row = tuple[Any, ...]


def is_asyncpg(conn: Connection) -> bool:
    """Whether statements on conn can run straight on an asyncpg connection."""
    return conn.dialect.driver == "asyncpg"


def fetch(conn: Connection, sql: str, values: Sequence[Any]) -> list[Row]:
    """Run sql once; return its rows (none for a statement that returns none)."""
    try:
        driver = _in_transaction(conn)
        return [tuple(record) for record in await_(driver.fetch(sql, *values))]
    except Exception as exc:
        _raise(conn, sql, values, exc)


def fetch_each(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> list[Row]:
    """Run sql once per set of values in one round trip; return every set's rows."""
    try:
        driver = _in_transaction(conn)
        return [tuple(record) for record in await_(driver.fetchmany(sql, rows))]
    except Exception as exc:
        _raise(conn, sql, rows, exc)


def execute_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run sql, which returns no rows, once per set of values in one round trip."""
    try:
        driver = _in_transaction(conn)
        await_(driver.executemany(sql, rows))
    except Exception as exc:
        _raise(conn, sql, rows, exc)


def _adapter(conn: Connection) -> Any:
    """SQLAlchemy's adapter of the asyncpg connection under conn."""
    return conn.connection.dbapi_connection


def _in_transaction(conn: Connection) -> Any:
    """The asyncpg connection under conn, its adapter's transaction begun."""
    adapter = _adapter(conn)
    # The adapter begins its transaction lazily, on its first statement; these bypass it.
    if adapter._transaction is None and not adapter.autocommit:
        await_(adapter._start_transaction())
    return conn.connection.driver_connection


def _raise(conn: Connection, sql: str, values: Any, exc: Exception) -> NoReturn:
    """Raise asyncpg's error as Connection.execute raises it; any other error as it is."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        # The adapter's own translation: asyncpg's classes to its DBAPI classes.
        _adapter(conn)._handle_exception(exc)
    except dbapi_error as translated:
        # As Connection.execute does: a connection the server dropped is invalidated, so
        # that the pool replaces it, and the error says so (connection_invalidated).
        dropped = conn.dialect.is_disconnect(translated, _adapter(conn), None)
        if dropped:
            conn.invalidate(translated)
        raise DBAPIError.instance(
            sql, values, translated, dbapi_error, connection_invalidated=dropped
        ) from exc
    raise exc
