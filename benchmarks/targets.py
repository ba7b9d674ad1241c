"""The storage SCPs an ingest benchmark compares: how to start each empty, and what it stored.

pacs-pg is pacs on a PostgreSQL database of its own (benchmarks.postgres), created at start
and dropped at stop, and pacs-pg-2w the same with two worker processes ([server] workers);
the other pacs targets run on SQLite. pacs-baseline is pacs from
another checkout (PACS_BASELINE_SRC), with the same configuration as pacs, so that two
versions are measured interleaved in one run. The calibration receiver's variants are in
benchmarks.calibration.
"""

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from benchmarks import calibration, dcmtk, postgres, s3_target
from benchmarks.processes import (
    DCMTK_ENV,
    free_port,
    launch,
    wait_for_listeners,
    wait_for_port,
)
from benchmarks.servers import (
    Destination,
    Server,
    Target,
    command_version,
    count_files,
    need_binary,
    need_module,
    package_version,
)

START_TIMEOUT = 60.0
BASELINE_VARIABLE = "PACS_BASELINE_SRC"
# Blobs at `ab/<sha256>`, or `ab/cd/<sha256>` in a pacs-baseline from before one-level stores.
PACS_BLOBS = ("??/*", "??/??/*")
# The benchmark clients (BENCH, ROUNDTRIP) are not peers; they query and retrieve.
ACCESS = '[access]\nunknown_peers = ["echo", "store", "find", "get", "move", "commit"]\n'


def _pacs_config(
    workdir: Path,
    port: int,
    destinations: Sequence[Destination],
    *,
    access: bool = True,
    extra: str = "",
    workers: int = 1,
    storage: str = "",
) -> Path:
    """The benchmark configuration; `access=False` for a pacs from before [access] existed
    (it refuses tables it does not know, and let every caller do everything); `extra`
    is TOML appended to it (tables of its own, e.g. [query]); `storage` more lines of [storage]."""
    config = workdir / "pacs.toml"
    peers = "".join(
        f'[[peers]]\nae_title = "{peer.ae_title}"\nhost = "127.0.0.1"\nport = {peer.port}\n'
        for peer in destinations
    )
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
        + (f"workers = {workers}\n" if workers > 1 else "")
        + '[logging]\nlevel = "WARNING"\n'
        f'[storage]\nroot = "{workdir / "store"}"\n{storage}'
        f'[database]\nurl = "sqlite+aiosqlite:///{workdir / "index.sqlite"}"\n'
        + (ACCESS if access else "")
        + peers
        + extra
    )
    return config


def start_pacs(
    workdir: Path,
    destinations: Sequence[Destination] = (),
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    access: bool = True,
    extra: str = "",
    workers: int = 1,
    storage: str = "",
) -> Server:
    """pacs on SQLite (unless `env` sets PACS_DATABASE_URL), logging at WARNING, knowing
    `destinations` as [[peers]]; its blobs live at `<root>/ab/cd/<sha256>`. With
    `workers` > 1 (PostgreSQL), it is up once every worker listens."""
    port = free_port()
    config = _pacs_config(
        workdir, port, destinations, access=access, extra=extra, workers=workers, storage=storage
    )
    log = workdir / "pacs.log"
    argv = [sys.executable, "-m", "pacs", "serve", "--config", str(config)]
    process = launch(argv, log, env=None if env is None else dict(env), cwd=cwd)
    wait_for_port(process, port, log, START_TIMEOUT)
    if workers > 1:
        wait_for_listeners(process, port, workers, log, START_TIMEOUT)
    return Server(process, port, "PACS", count_files(workdir / "store", *PACS_BLOBS), log)


def baseline_source() -> Path | None:
    """The checkout pacs-baseline runs from, if PACS_BASELINE_SRC names one."""
    value = os.environ.get(BASELINE_VARIABLE)
    return Path(value).resolve() if value else None


def _baseline_env(source: Path) -> dict[str, str]:
    # PYTHONPATH comes before site-packages, so it wins over the editable install of this tree.
    inherited = os.environ.get("PYTHONPATH")
    path = str(source) if not inherited else f"{source}{os.pathsep}{inherited}"
    return {**os.environ, "PYTHONPATH": path}


def _baseline_missing() -> str | None:
    source = baseline_source()
    if source is None:
        return f"{BASELINE_VARIABLE} not set (a checkout of pacs to compare with)"
    if not (source / "pacs" / "__main__.py").is_file():
        return f"{BASELINE_VARIABLE}={source} holds no pacs package"
    probe = [sys.executable, "-c", "import pacs; print(pacs.__file__)"]
    result = subprocess.run(
        probe, env=_baseline_env(source), cwd=source, capture_output=True, text=True, check=False
    )
    imported = result.stdout.strip()
    if Path(imported).resolve() != source / "pacs" / "__init__.py":
        return f"pacs from {source} does not import: {imported or result.stderr.strip()}"
    return None


def start_pacs_baseline(workdir: Path, destinations: Sequence[Destination] = ()) -> Server:
    """pacs from the checkout at PACS_BASELINE_SRC, configured as the pacs target. It runs
    in that checkout, since `python -m` puts the working directory first on sys.path."""
    source = baseline_source()
    if source is None:
        raise RuntimeError(f"{BASELINE_VARIABLE} not set")
    access = (source / "pacs" / "config_access.py").is_file()
    env = _baseline_env(source)
    return start_pacs(workdir, destinations, env=env, cwd=source, access=access)


def _baseline_version() -> str:
    source = baseline_source()
    if source is None:
        return "not available"
    found = re.search(r'__version__ = "([^"]+)"', (source / "pacs" / "__init__.py").read_text())
    commit = command_version(["git", "-C", str(source), "describe", "--always", "--dirty"])
    return f"pacs {found[1] if found else 'unknown'} at {source}, commit {commit}"


def start_pacs_postgres(
    workdir: Path, destinations: Sequence[Destination] = (), *, workers: int = 1
) -> Server:
    """pacs on a database of its own, created empty in the PostgreSQL server; dropped at stop."""
    name = postgres.create_database()
    env = {**os.environ, "PACS_DATABASE_URL": postgres.database_url(name)}

    def drop() -> None:
        postgres.drop_database(name)

    try:
        server = start_pacs(workdir, destinations, env=env, workers=workers)
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
    workdir: Path,
    dicom_port: int,
    http_port: int,
    destinations: Sequence[Destination],
    overrides: Mapping[str, object] | None = None,
) -> Path:
    config = workdir / "orthanc.json"
    settings: dict[str, object] = {
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
    settings.update(overrides or {})
    config.write_text(json.dumps(settings, indent=2))
    return config


def _orthanc_instances(http_port: int) -> Callable[[], int]:
    def count() -> int:
        url = f"http://127.0.0.1:{http_port}/statistics"
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(json.load(response)["CountInstances"])

    return count


def start_orthanc(
    workdir: Path,
    destinations: Sequence[Destination] = (),
    *,
    overrides: Mapping[str, object] | None = None,
) -> Server:
    """Orthanc with its default SQLite index, in its own directories (not the Debian service),
    knowing `destinations` as DicomModalities; `overrides` replace or add top-level
    settings (e.g. Plugins and a DicomWeb section)."""
    dicom_port, http_port = free_port(), free_port()
    config = _orthanc_config(workdir, dicom_port, http_port, destinations, overrides)
    log = workdir / "orthanc.log"
    process = launch(["Orthanc", str(config)], log, env=DCMTK_ENV)
    wait_for_port(process, dicom_port, log, START_TIMEOUT)
    wait_for_port(process, http_port, log, START_TIMEOUT)
    return Server(
        process, dicom_port, "ORTHANC", _orthanc_instances(http_port), log, http_port=http_port
    )


def start_storescp(workdir: Path) -> Server:
    """DCMTK storescp writing plain files, no index: the ceiling. --fork serves associations
    in parallel, one child each (otherwise it serves one association at a time)."""
    port, out = free_port(), workdir / "received"
    out.mkdir()
    log = workdir / "storescp.log"
    argv = [dcmtk.tool("storescp"), "--fork", "-aet", "STORESCP", "-od", str(out), str(port)]
    process = launch(argv, log, env=DCMTK_ENV)
    wait_for_port(process, port, log, START_TIMEOUT)
    return Server(process, port, "STORESCP", count_files(out, "*"), log)


def start_pynetdicom(workdir: Path) -> Server:
    """pynetdicom's storescp app (threaded, one thread per association)."""
    port, out = free_port(), workdir / "received"
    out.mkdir()
    log = workdir / "pynetdicom.log"
    argv = [sys.executable, "-m", "pynetdicom", "storescp", "-aet", "STORESCP"]
    process = launch([*argv, "-od", str(out), str(port)], log)
    wait_for_port(process, port, log, START_TIMEOUT)
    return Server(process, port, "STORESCP", count_files(out, "*"), log)


TARGETS = {
    "pacs": Target("pacs", need_module("pacs"), start_pacs, lambda: package_version("pacs")),
    "pacs-baseline": Target(
        "pacs-baseline", _baseline_missing, start_pacs_baseline, _baseline_version
    ),
    "pacs-pg": Target("pacs-pg", postgres.unavailable, start_pacs_postgres, _pacs_postgres_version),
    "pacs-s3": Target(
        "pacs-s3",
        s3_target.missing,
        s3_target.start_with(start_pacs),
        lambda: f"pacs {package_version('pacs')}, moto {package_version('moto')}",
    ),
    # Two serving processes on one port ([server] workers = 2), one database.
    "pacs-pg-2w": Target(
        "pacs-pg-2w",
        postgres.unavailable,
        partial(start_pacs_postgres, workers=2),
        _pacs_postgres_version,
    ),
    "orthanc": Target(
        "orthanc",
        need_binary("Orthanc"),
        start_orthanc,
        lambda: command_version(["Orthanc", "--version"]),
    ),
    "storescp": Target(
        "storescp",
        need_binary("storescp"),
        start_storescp,
        lambda: command_version([dcmtk.tool("storescp"), "--version"]),
    ),
    "pynetdicom": Target(
        "pynetdicom",
        need_module("pynetdicom"),
        start_pynetdicom,
        lambda: package_version("pynetdicom"),
    ),
} | calibration.TARGETS
