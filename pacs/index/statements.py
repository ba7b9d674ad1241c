"""Run prebuilt statements straight on the driver: sqlite3, or asyncpg.

SQLAlchemy Core's per-statement machinery costs several times what sqlite3 itself
spends on a small statement, or what asyncpg spends on its round trip, and the write
path and C-FIND run small statements by the thousand. A statement built once (the
write path's, a C-FIND plan's) is compiled once per dialect and set of parameter names
(the SQL text, the parameters' order, their types' bind and result processors, all
from SQLAlchemy's compiler) and executed on the DBAPI connection (sqlite3) or the
asyncpg connection (`asyncpg_direct`); a statement run for many parameter sets is one
`executemany`. aiosqlite goes through `Connection.execute`.
"""

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

from pacs.index import asyncpg_direct

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    expanding: frozenset[str]
    processors: Mapping[str, Callable[[Any], Any]]
    constants: Mapping[str, Any]  # binds that carry their value: literals, SQLite's OFFSET 0
    results: tuple[Callable[[Any], Any] | None, ...]  # per selected column; empty: none

    def bind(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL with its expanding IN lists written out, and the positional values."""
        if not self.expanding:
            return self.sql, self.values(params)
        values: list[Any] = []
        sql = self.sql
        for name in self.names:
            value = params[name] if name in params else self.constants[name]
            if name in self.expanding:
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", _placeholders(value), 1)
                for item in value:
                    values.extend(item) if isinstance(item, tuple) else values.append(item)
                continue
            process = self.processors.get(name)
            values.append(value if process is None or value is None else process(value))
        return sql, values

    def bind_dollar(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """As `bind`, for PostgreSQL's numbered parameters ($1): a list of values is one
        array (`= ANY($1)`, one prepared statement whatever its length), a list of
        tuples is written out. Only for statements whose parameters are all lists."""
        if not self.expanding:
            return self.sql, self.values(params)
        values: list[Any] = []
        sql = self.sql
        for name in self.names:
            value = params[name]
            if value and isinstance(value[0], tuple):
                rows = []
                for item in value:
                    first = len(values) + 1
                    rows.append("(" + ", ".join(f"${first + i}" for i in range(len(item))) + ")")
                    values.extend(item)
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join(rows), 1)
            else:
                values.append(list(value))
                sql = sql.replace(f"IN (__[POSTCOMPILE_{name}])", f"= ANY(${len(values)})", 1)
        return sql, values

    def values(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional values of a statement without IN lists."""
        values: list[Any] = []
        for name in self.names:
            value = params[name] if name in params else self.constants[name]
            process = self.processors.get(name)
            values.append(value if process is None or value is None else process(value))
        return values

    def rows(self, fetched: list[Row]) -> list[Row]:
        """Rows as the driver gave them, through the columns' result processors."""
        if not any(self.results):
            return fetched
        results = self.results
        return [
            tuple(v if p is None or v is None else p(v) for p, v in zip(results, row, strict=True))
            for row in fetched
        ]


def _placeholders(values: Sequence[Any]) -> str:
    """An IN list's placeholders: "?, ?" for two values, "(?, ?), (?, ?)" for two pairs."""
    return ", ".join(
        "(" + ", ".join(["?"] * len(v)) + ")" if isinstance(v, tuple) else "?" for v in values
    )


# Enough for the write path's statements and the query shapes a site sends; C-FIND plans
# come and go (an AnyOf of any length is a shape), so the oldest compiled form goes first.
_CACHE_SIZE = 512
_compiled: OrderedDict[tuple[int, str, tuple[str, ...]], tuple[Executable, _Compiled]] = (
    OrderedDict()
)


def _compile(statement: Executable, keys: tuple[str, ...], dialect: Dialect) -> _Compiled:
    cache_key = (id(statement), dialect.name, keys)
    found = _compiled.get(cache_key)
    # The entry holds its statement, so no other object can have that id meanwhile.
    if found is not None and found[0] is statement:
        _compiled.move_to_end(cache_key)
        return found[1]
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None
    binds = compiled.binds
    processors = {}
    for name in compiled.positiontup:
        process = binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None and not binds[name].expanding:
            processors[name] = process
    results: tuple[Callable[[Any], Any] | None, ...] = ()
    if isinstance(statement, Select):
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
    entry = _Compiled(
        compiled.string,
        tuple(compiled.positiontup),
        frozenset(name for name, bind in binds.items() if bind.expanding),
        processors,
        {name: bind.value for name, bind in binds.items() if not bind.required},
        results,
    )
    _compiled[cache_key] = (statement, entry)
    if len(_compiled) > _CACHE_SIZE:
        _compiled.popitem(last=False)
    return entry


def is_direct(conn: Connection) -> bool:
    """Whether statements on conn run straight on its sqlite3 connection."""
    return conn.dialect.driver == "pysqlite"


def _on_asyncpg(conn: Connection, statement: Executable, keys: tuple[str, ...]) -> _Compiled | None:
    """The compiled form of statement when it runs straight on asyncpg (all of its
    parameters lists, or none of them); otherwise None."""
    if not asyncpg_direct.is_asyncpg(conn):
        return None
    compiled = _compile(statement, keys, conn.dialect)
    if compiled.expanding and compiled.expanding != set(compiled.names):
        return None
    return compiled


def execute(conn: Connection, statement: Executable, params: Mapping[str, Any]) -> list[Row]:
    """Run statement once with params; return its rows (RETURNING included)."""
    pg = _on_asyncpg(conn, statement, tuple(params))
    if pg is not None and all(v for v in params.values() if isinstance(v, list)):
        sql, values = pg.bind_dollar(params)
        return pg.rows(asyncpg_direct.fetch(conn, sql, values))
    if not is_direct(conn) or any(isinstance(v, list) and not v for v in params.values()):
        # An empty IN list is SQLAlchemy's to render; the write path never sends one.
        result = conn.execute(statement, dict(params))
        return [tuple(row) for row in result] if result.returns_rows else []
    compiled = _compile(statement, tuple(params), conn.dialect)
    sql, values = compiled.bind(params)
    try:
        cursor = _driver(conn).execute(sql, values)
        try:
            return compiled.rows(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(conn, sql, values, exc) from exc


def execute_each(
    conn: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]
) -> list[Row]:
    """Run statement once per parameter set (all with the same names); return all rows.

    On sqlite3 that is one execute per set (its `executemany` drops returned rows).
    """
    if not rows:
        return []
    pg = _on_asyncpg(conn, statement, tuple(rows[0]))
    if pg is not None and not pg.expanding:
        sets = [pg.values(row) for row in rows]
        return pg.rows(asyncpg_direct.fetch_each(conn, pg.sql, sets))
    if not is_direct(conn):
        result = conn.execute(statement, [dict(row) for row in rows])
        return [tuple(row) for row in result] if result.returns_rows else []
    returned: list[Row] = []
    for row in rows:
        returned += execute(conn, statement, row)
    return returned


def execute_many(
    conn: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]
) -> int | None:
    """Run a statement that returns no rows once per parameter set (all with the same
    names, no IN lists) in one call; return how many rows it changed, None where the
    driver does not count them."""
    if not rows:
        return 0
    pg = _on_asyncpg(conn, statement, tuple(rows[0]))
    if pg is not None and not pg.expanding:
        asyncpg_direct.execute_many(conn, pg.sql, [pg.values(row) for row in rows])
        return None
    if not is_direct(conn):
        result = conn.execute(statement, [dict(row) for row in rows])
        return result.rowcount if conn.dialect.supports_sane_multi_rowcount else None
    compiled = _compile(statement, tuple(rows[0]), conn.dialect)
    values = [compiled.values(row) for row in rows]
    try:
        cursor = _driver(conn).executemany(compiled.sql, values)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(conn, compiled.sql, values, exc) from exc


def execute_all_or_none(
    conn: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]
) -> bool:
    """Run a statement that changes at most one row per parameter set, as `execute_many`,
    and keep its changes only when every set changed a row; whether they were kept.

    Only on sqlite3 (`is_direct`): the statement runs under a savepoint of its own.
    """
    # An error leaves the savepoint to the caller's rollback, which ends it with the
    # transaction (or with the enclosing savepoint it rolls back to).
    _execute_sql(conn, "SAVEPOINT pacs_all_or_none")
    changed = execute_many(conn, statement, rows)
    if changed != len(rows):
        _execute_sql(conn, "ROLLBACK TO pacs_all_or_none")
    _execute_sql(conn, "RELEASE pacs_all_or_none")
    return changed == len(rows)


def _execute_sql(conn: Connection, sql: str) -> None:
    try:
        _driver(conn).execute(sql).close()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(conn, sql, (), exc) from exc


def _driver(conn: Connection) -> Any:
    """The sqlite3 connection under conn."""
    return conn.connection.driver_connection


def _as_sqlalchemy(conn: Connection, sql: str, values: Any, exc: Exception) -> StatementError:
    """The driver's error as Connection.execute raises it (IntegrityError,
    OperationalError...), so that callers tell a refused value from an unavailable
    database the same way."""
    return DBAPIError.instance(sql, values, exc, conn.dialect.loaded_dbapi.Error)
