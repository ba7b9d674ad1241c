"""The storage SCPs an ingest benchmark compares: how to start each empty, and what it stored.

pacs-pg is pacs on a PostgreSQL database of its own (benchmarks.postgres), created at start
and dropped at stop; the other pacs target runs on SQLite.
"""

import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks import dcmtk, postgres
from benchmarks.processes import DCMTK_ENV, free_port, launch, stop, wait_for_port

START_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Server:
    """A running storage SCP, started empty in its own work directory."""

    process: subprocess.Popen[bytes]
    port: int
    ae_title: str
    stored: Callable[[], int]  # instances it holds now
    log: Path
    cleanup: Callable[[], None] = field(default=lambda: None)  # run once the process stopped


@dataclass(frozen=True, slots=True)
class Destination:
    """A C-MOVE destination the server is told about: an AE title on 127.0.0.1."""

    ae_title: str
    port: int


@dataclass(frozen=True, slots=True)
class Target:
    """A kind of server: whether it can run here, how to start it, and its version."""

    name: str
    missing: Callable[[], str | None]  # why it cannot run here, or None
    start: Callable[[Path], Server]
    version: Callable[[], str]


def shutdown(server: Server) -> None:
    """Stop the server's process (tree), then release what it used outside its work directory."""
    try:
        stop(server.process)
    finally:
        server.cleanup()


def _count_files(pattern: str, root: Path) -> Callable[[], int]:
    return lambda: sum(1 for path in root.glob(pattern) if path.is_file())


def command_version(argv: list[str]) -> str:
    """The first line a program prints for --version."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def _need_binary(name: str) -> Callable[[], str | None]:
    return lambda: None if dcmtk.find(name) else f"{name} not on PATH"


def _need_module(name: str) -> Callable[[], str | None]:
    return lambda: None if importlib.util.find_spec(name) else f"Python module {name} missing"


def package_version(name: str) -> str:
    """An installed distribution's version."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _pacs_config(workdir: Path, port: int, destinations: Sequence[Destination]) -> Path:
    config = workdir / "pacs.toml"
    peers = "".join(
        f'[[peers]]\nae_title = "{peer.ae_title}"\nhost = "127.0.0.1"\nport = {peer.port}\n'
        for peer in destinations
    )
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n[logging]\nlevel = "WARNING"\n'
        f'[storage]\nroot = "{workdir / "store"}"\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{workdir / "index.sqlite"}"\n'
        # The benchmark clients (BENCH, ROUNDTRIP) are not peers; they query and retrieve.
        '[access]\nunknown_peers = ["echo", "store", "find", "get", "move", "commit"]\n'
        f"{peers}"
    )
    return config


def start_pacs(
    workdir: Path,
    destinations: Sequence[Destination] = (),
    env: Mapping[str, str] | None = None,
) -> Server:
    """pacs on SQLite (unless `env` sets PACS_DATABASE_URL), logging at WARNING, knowing
    `destinations` as [[peers]]; its blobs live at `<root>/ab/cd/<sha256>`."""
    port = free_port()
    config = _pacs_config(workdir, port, destinations)
    log = workdir / "pacs.log"
    argv = [sys.executable, "-m", "pacs", "serve", "--config", str(config)]
    process = launch(argv, log, env=None if env is None else dict(env))
    wait_for_port(process, port, log, START_TIMEOUT)
    return Server(process, port, "PACS", _count_files("??/??/*", workdir / "store"), log)


def start_pacs_postgres(workdir: Path, destinations: Sequence[Destination] = ()) -> Server:
    """pacs on a database of its own, created empty in the PostgreSQL server; dropped at stop."""
    name = postgres.create_database()
    env = {**os.environ, "PACS_DATABASE_URL": postgres.database_url(name)}

    def drop() -> None:
        postgres.drop_database(name)

    try:
        server = start_pacs(workdir, destinations, env=env)
    except BaseException:
        drop()
        raise
    return replace(server, cleanup=drop)


def _pacs_postgres_version() -> str:
    try:
        return f"pacs {package_version('pacs')}, PostgreSQL {postgres.server_version()}"
    except Exception as exc:  # unreachable server: the version is unknown, not fatal
        return f"PostgreSQL unavailable ({exc})"


def _orthanc_config(
    workdir: Path, dicom_port: int, http_port: int, destinations: Sequence[Destination]
) -> Path:
    config = workdir / "orthanc.json"
    settings = {
        "Name": "bench",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": False,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [],
        # Serve C-FIND, C-GET and C-MOVE to any calling AE, as pacs does.
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
        "DicomModalities": {d.ae_title: [d.ae_title, "127.0.0.1", d.port] for d in destinations},
    }
    config.write_text(json.dumps(settings, indent=2))
    return config


def _orthanc_instances(http_port: int) -> Callable[[], int]:
    def count() -> int:
        url = f"http://127.0.0.1:{http_port}/statistics"
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(json.load(response)["CountInstances"])

    return count


def start_orthanc(workdir: Path, destinations: Sequence[Destination] = ()) -> Server:
    """Orthanc with its default SQLite index, in its own directories (not the Debian service),
    knowing `destinations` as DicomModalities."""
    dicom_port, http_port = free_port(), free_port()
    config = _orthanc_config(workdir, dicom_port, http_port, destinations)
    log = workdir / "orthanc.log"
    process = launch(["Orthanc", str(config)], log, env=DCMTK_ENV)
    wait_for_port(process, dicom_port, log, START_TIMEOUT)
    wait_for_port(process, http_port, log, START_TIMEOUT)
    return Server(process, dicom_port, "ORTHANC", _orthanc_instances(http_port), log)


def start_storescp(workdir: Path) -> Server:
    """DCMTK storescp writing plain files, no index: the ceiling. --fork serves associations
    in parallel, one child each (otherwise it serves one association at a time)."""
    port, out = free_port(), workdir / "received"
    out.mkdir()
    log = workdir / "storescp.log"
    argv = [dcmtk.tool("storescp"), "--fork", "-aet", "STORESCP", "-od", str(out), str(port)]
    process = launch(argv, log, env=DCMTK_ENV)
    wait_for_port(process, port, log, START_TIMEOUT)
    return Server(process, port, "STORESCP", _count_files("*", out), log)


def start_pynetdicom(workdir: Path) -> Server:
    """pynetdicom's storescp app (threaded, one thread per association)."""
    port, out = free_port(), workdir / "received"
    out.mkdir()
    log = workdir / "pynetdicom.log"
    argv = [sys.executable, "-m", "pynetdicom", "storescp", "-aet", "STORESCP"]
    process = launch([*argv, "-od", str(out), str(port)], log)
    wait_for_port(process, port, log, START_TIMEOUT)
    return Server(process, port, "STORESCP", _count_files("*", out), log)


TARGETS = {
    "pacs": Target("pacs", _need_module("pacs"), start_pacs, lambda: package_version("pacs")),
    "pacs-pg": Target("pacs-pg", postgres.unavailable, start_pacs_postgres, _pacs_postgres_version),
    "orthanc": Target(
        "orthanc",
        _need_binary("Orthanc"),
        start_orthanc,
        lambda: command_version(["Orthanc", "--version"]),
    ),
    "storescp": Target(
        "storescp",
        _need_binary("storescp"),
        start_storescp,
        lambda: command_version([dcmtk.tool("storescp"), "--version"]),
    ),
    "pynetdicom": Target(
        "pynetdicom",
        _need_module("pynetdicom"),
        start_pynetdicom,
        lambda: package_version("pynetdicom"),
    ),
}
