"""The Query/Retrieve SCPs the query and retrieve benchmarks compare, and their versions.

pacs runs on SQLite, and on PostgreSQL when a server answers at
PACS_TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432): each start creates
a database of its own there, and stopping the server drops it.
"""

import asyncio
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from benchmarks.targets import TARGETS, Destination, Server, start_orthanc, start_pacs

POSTGRES_URL = os.environ.get(
    "PACS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


@dataclass(frozen=True, slots=True)
class QRTarget:
    """A Q/R SCP: whether it can run here, how to start it knowing some move destinations."""

    name: str
    missing: Callable[[], str | None]
    start: Callable[[Path, Sequence[Destination]], Server]
    version: Callable[[], str]


def _with_database(url: str, name: str) -> str:
    """`url` naming database `name` instead of the one it names."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin_async(statement: str) -> str:
    import asyncpg  # noqa: PLC0415 (only the PostgreSQL target needs it)

    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=10)
    try:
        return str(await conn.fetchval(statement) or "")
    finally:
        await conn.close()


def _admin(statement: str) -> str:
    return asyncio.run(_admin_async(statement))


def _postgres_missing() -> str | None:
    parts = urlsplit(POSTGRES_URL)
    with socket.socket() as sock:
        sock.settimeout(2)
        if sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 5432)) != 0:
            return f"no PostgreSQL server at {parts.hostname}:{parts.port}"
    try:
        _admin("SELECT 1")
    except Exception as exc:  # asyncpg's errors, refused logins: all mean "cannot run here"
        return f"PostgreSQL at {parts.hostname}:{parts.port} refused us: {exc}"
    return None


def start_pacs_postgres(workdir: Path, destinations: Sequence[Destination]) -> Server:
    """pacs on a database of its own, created empty in the PostgreSQL server; dropped at stop."""
    name = f"pacs_bench_{os.getpid()}_{secrets.token_hex(4)}"
    _admin(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "PACS_DATABASE_URL": _with_database(POSTGRES_URL, name)}

    def drop() -> None:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    try:
        server = start_pacs(workdir, destinations, env=env)
    except BaseException:
        drop()
        raise
    return replace(server, cleanup=drop)


def _postgres_version() -> str:
    try:
        return f"pacs {TARGETS['pacs'].version()}, PostgreSQL {_admin('SHOW server_version')}"
    except Exception as exc:  # unreachable server: the version is unknown, not fatal
        return f"PostgreSQL unavailable ({exc})"


QR_TARGETS = {
    "pacs": QRTarget("pacs", TARGETS["pacs"].missing, start_pacs, TARGETS["pacs"].version),
    "orthanc": QRTarget(
        "orthanc",
        TARGETS["orthanc"].missing,
        start_orthanc,
        TARGETS["orthanc"].version,
    ),
    "pacs-pg": QRTarget("pacs-pg", _postgres_missing, start_pacs_postgres, _postgres_version),
}


def choose(names: str) -> tuple[list[QRTarget], dict[str, str]]:
    """The named targets that can run here, and why the others cannot; unknown names raise."""
    chosen, skipped = [], {}
    for name in filter(None, (part.strip() for part in names.split(","))):
        if name not in QR_TARGETS:
            raise ValueError(f"unknown target {name!r}; known: {', '.join(QR_TARGETS)}")
        reason = QR_TARGETS[name].missing()
        if reason is None:
            chosen.append(QR_TARGETS[name])
        else:
            skipped[name] = reason
    return chosen, skipped
