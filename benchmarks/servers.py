"""What every benchmark knows of a server under measurement: how it runs, how to stop it,
and the small probes (file counts, versions) the target modules share."""

import importlib.util
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks import dcmtk
from benchmarks.processes import stop


@dataclass(frozen=True, slots=True)
class Server:
    """A running storage SCP, started empty in its own work directory."""

    process: subprocess.Popen[bytes]
    port: int
    ae_title: str
    stored: Callable[[], int]  # instances it holds now
    log: Path
    cleanup: Callable[[], None] = field(default=lambda: None)  # run once the process stopped
    http_port: int = 0  # its HTTP (REST, DICOMweb) port, when it has one


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


def count_files(root: Path, *patterns: str) -> Callable[[], int]:
    """Instances held, counted as the files under `root` matching any of `patterns`."""
    return lambda: sum(1 for p in patterns for path in root.glob(p) if path.is_file())


def command_version(argv: list[str]) -> str:
    """The first line a program prints for --version."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def need_binary(name: str) -> Callable[[], str | None]:
    return lambda: None if dcmtk.find(name) else f"{name} not on PATH"


def need_module(name: str) -> Callable[[], str | None]:
    return lambda: None if importlib.util.find_spec(name) else f"Python module {name} missing"


def package_version(name: str) -> str:
    """An installed distribution's version."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"
