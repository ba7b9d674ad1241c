"""The PostgreSQL server that pacs-pg targets run on: whether it answers, and databases of our own.

The server is the one PACS_TEST_POSTGRES_URL names (default: postgres@127.0.0.1:5432, trust
authentication); every start of a pacs-pg target creates an empty database there, and stopping
that server drops it.
"""

import asyncio
import os
import secrets
import socket
from urllib.parse import urlsplit, urlunsplit

POSTGRES_URL = os.environ.get(
    "PACS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def database_url(name: str) -> str:
    """POSTGRES_URL naming database `name` instead of the one it names."""
    return urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin_async(statement: str) -> str:
    import asyncpg  # noqa: PLC0415 (only the PostgreSQL targets need it)

    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=10)
    try:
        return str(await conn.fetchval(statement) or "")
    finally:
        await conn.close()


def _admin(statement: str) -> str:
    return asyncio.run(_admin_async(statement))


def unavailable() -> str | None:
    """Why the server cannot be used here, or None when it answers."""
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


def server_version() -> str:
    return _admin("SHOW server_version")


def create_database() -> str:
    """Create an empty database with a name no other run uses; return that name."""
    name = f"pacs_bench_{os.getpid()}_{secrets.token_hex(4)}"
    _admin(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    """Drop database `name`, disconnecting whoever still uses it."""
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
