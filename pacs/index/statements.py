"""Run the write path's prebuilt statements: on SQLite's writer straight on its sqlite3 connection.

SQLAlchemy Core costs about 80 us per statement around sqlite3's own 10 us, and
one small instance's transaction runs six: most of the index writer's time. On
the stdlib sqlite3 driver a statement is compiled once per set of parameter names
(the SQL text, the parameters' order, their types' bind processors, all from
SQLAlchemy's compiler) and executed on the DBAPI connection of the transaction
SQLAlchemy opened. Every other driver (asyncpg, aiosqlite) goes through
`Connection.execute` as before.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    expanding: frozenset[str]
    processors: Mapping[str, Callable[[Any], Any]]

    def bind(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL with its expanding IN lists written out, and the positional values."""
        values: list[Any] = []
        sql = self.sql
        for name in self.names:
            value = params[name]
            if name in self.expanding:
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", _placeholders(value), 1)
                for item in value:
                    values.extend(item) if isinstance(item, tuple) else values.append(item)
                continue
            process = self.processors.get(name)
            values.append(value if process is None or value is None else process(value))
        return sql, values


def _placeholders(values: Sequence[Any]) -> str:
    """An IN list's placeholders: "?, ?" for two values, "(?, ?), (?, ?)" for two pairs."""
    return ", ".join(
        "(" + ", ".join(["?"] * len(v)) + ")" if isinstance(v, tuple) else "?" for v in values
    )


_compiled: dict[tuple[int, tuple[str, ...]], _Compiled] = {}


def _compile(statement: Executable, keys: tuple[str, ...], dialect: Dialect) -> _Compiled:
    cache_key = (id(statement), keys)
    found = _compiled.get(cache_key)
    if found is not None:
        return found
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None
    binds = compiled.binds
    processors = {}
    for name in compiled.positiontup:
        process = binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None and not binds[name].expanding:
            processors[name] = process
    found = _Compiled(
        compiled.string,
        tuple(compiled.positiontup),
        frozenset(name for name, bind in binds.items() if bind.expanding),
        processors,
    )
    # The statements are module constants, so their ids stay theirs.
    _compiled[cache_key] = found
    return found


def _direct(conn: Connection) -> bool:
    return conn.dialect.driver == "pysqlite"


def execute(conn: Connection, statement: Executable, params: Mapping[str, Any]) -> list[Row]:
    """Run statement once with params; return its rows (RETURNING included)."""
    if not _direct(conn) or any(isinstance(v, list) and not v for v in params.values()):
        # An empty IN list is SQLAlchemy's to render; the write path never sends one.
        result = conn.execute(statement, dict(params))
        return [tuple(row) for row in result] if result.returns_rows else []
    sql, values = _compile(statement, tuple(params), conn.dialect).bind(params)
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        cursor = conn.connection.driver_connection.execute(sql, values)  # type: ignore[union-attr]
        try:
            return cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()
    except dbapi_error as exc:
        # As Connection.execute raises it (IntegrityError, OperationalError...), so that
        # callers tell a refused value from an unavailable database the same way.
        raise DBAPIError.instance(sql, values, exc, dbapi_error) from exc


def execute_each(
    conn: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]
) -> list[Row]:
    """Run statement once per parameter set (all with the same names); return all rows."""
    if not rows:
        return []
    if not _direct(conn):
        result = conn.execute(statement, [dict(row) for row in rows])
        return [tuple(row) for row in result] if result.returns_rows else []
    returned: list[Row] = []
    for row in rows:
        returned += execute(conn, statement, row)
    return returned
