"""The real pacs server on an ephemeral loopback port, and the peers that talk to it."""

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pynetdicom.pdu import A_ASSOCIATE_RJ

from benchmarks.dcmtk import find as find_dcmtk
from pacs.app import PacsApp
from pacs.config import load_settings
from pacs.net.contexts import VERIFICATION, proposal
from pacs.net.handshake import number_contexts
from pacs.net.negotiation import build_request
from pacs.net.pdu import AbortSource, PduType, encode_abort


@dataclass(frozen=True, slots=True)
class PacsAddress:
    """A running test server: where it listens, and the app and directory behind it."""

    host: str
    port: int
    ae_title: str = "PACS"
    app: PacsApp | None = None
    directory: Path | None = None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return f'"{value}"'
    if isinstance(value, list | tuple | frozenset | set):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table: [[web.users]] as users = [{...}]
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


# The test AEs (TESTSCU, WORKSTATION...) are not configured peers; tests of permissions
# set [access] themselves.
EVERYTHING = ["echo", "store", "find", "get", "move", "commit"]


def write_config(directory: Path, **sections: Any) -> Path:
    """Write a pacs.toml for a test server: port 0, data under `directory`, short timeouts."""
    tables: dict[str, Any] = {
        "server": {"port": 0, "host": "127.0.0.1", "acse_timeout": 5, "network_timeout": 30},
        "storage": {"root": directory / "store"},
        "database": {"url": f"sqlite+aiosqlite:///{directory / 'index.sqlite'}"},
        "access": {"unknown_peers": EVERYTHING},
    }
    for name, values in sections.items():
        if isinstance(values, list):
            tables[name] = values
        else:
            tables.setdefault(name, {}).update(values)
    lines = []
    for name, values in tables.items():
        if isinstance(values, list):  # an array of tables: [[peers]]
            for table in values:
                lines.append(f"[[{name}]]")
                lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
            continue
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    path = directory / "pacs.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


StartPacs = Callable[..., Awaitable[PacsAddress]]


@pytest.fixture
async def start_pacs(tmp_path: Path, database_url: str) -> AsyncIterator[StartPacs]:
    """Start a real server with the given config sections; every one started is stopped after.

    Parametrised by `database_url`: every test that starts a server runs on SQLite
    and on PostgreSQL.
    """
    apps: list[PacsApp] = []

    async def start(directory: Path | None = None, **sections: Any) -> PacsAddress:
        """Start a server; pass the `directory` of a stopped one to restart on its data."""
        if directory is None:
            directory = tmp_path / f"pacs{len(apps)}"
            directory.mkdir()
        existing = directory / "pacs.toml"
        url = (
            load_settings(existing, environ={}).database.url if existing.exists() else database_url
        )
        sections.setdefault("database", {}).setdefault("url", url)
        sections.setdefault("storage", {}).setdefault("min_free_bytes", 0)
        settings = load_settings(write_config(directory, **sections), environ={})
        app = PacsApp(settings)
        await app.start()
        apps.append(app)
        host, port = app.address
        return PacsAddress(host, port, settings.server.ae_title, app, directory)

    yield start
    for app in apps:
        await app.stop(grace=2.0)


@pytest.fixture
async def running_pacs(start_pacs: StartPacs) -> PacsAddress:
    return await start_pacs()


def dcmtk_tool(name: str) -> str:
    """Path of a DCMTK tool; the test is skipped with the reason when DCMTK is absent."""
    path = find_dcmtk(name)  # DCMTK's, not pynetdicom's apps of the same names
    if path is None:
        pytest.skip(f"DCMTK's {name} is not installed (apt-get install dcmtk)")
    return path


async def run_dcmtk(name: str, *args: str) -> tuple[int, str]:
    """Run a DCMTK tool with TCP_NODELAY=1 (Debian's DCMTK reads it); return code and output."""
    process = await asyncio.create_subprocess_exec(
        dcmtk_tool(name),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


async def wait_until_listening(port: int, timeout: float = 30.0) -> None:
    """Wait until a local port takes TCP connections (storescp says nothing when ready)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


async def rejection(address: PacsAddress, calling: str) -> tuple[int, int, int] | None:
    """(result, source, reason) of the A-ASSOCIATE-RJ for `calling`; None when accepted."""
    reader, writer = await asyncio.open_connection(address.host, address.port)
    try:
        contexts = number_contexts([proposal(VERIFICATION)])
        writer.write(build_request(calling, address.ae_title, contexts, 0))
        async with asyncio.timeout(10):
            header = await reader.readexactly(6)
            body = await reader.readexactly(int.from_bytes(header[2:], "big"))
        if header[0] == PduType.ASSOCIATE_AC:
            writer.write(encode_abort(AbortSource.SERVICE_USER))
            return None
        rj = A_ASSOCIATE_RJ()
        rj.decode(header + body)
        return int(rj.result or 0), int(rj.source or 0), int(rj.reason_diagnostic or 0)
    finally:
        writer.close()
