"""Run a `pacs` admin command as an admin would and measure it: wall time, CPU time and
peak memory of the command with its worker processes (shared by the rebuild benchmarks)."""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import postgres


@dataclass(frozen=True, slots=True)
class Measured:
    """One command's run: its output, and what it cost."""

    output: str
    wall: float  # seconds
    cpu: float  # user + system seconds, of the command and of the workers it waited for
    peak_mib: float  # the largest resident set among them

    def per_second(self, count: int) -> str:
        return f"{count / self.wall:,.0f}/s wall, {count / self.cpu:,.0f} per CPU-second"


def run_pacs(*args: str) -> Measured:
    """Run `python -m pacs ARGS`; raise with its output when it fails."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "pacs", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    out = process.stdout.read().decode()
    # wait4: this child's usage, including the workers it reaped, whatever else ran here.
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"pacs {args[0]} exited with {status}: {out}")
    return Measured(out, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def write_config(work: Path, port: int, database_url: str | None) -> Path:
    """A pacs.toml with the store and (by default) a SQLite index under `work`."""
    url = database_url or f"sqlite+aiosqlite:///{work / 'index.sqlite'}"
    (work / "store").mkdir(parents=True, exist_ok=True)
    config = work / "pacs.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n[logging]\nlevel = "WARNING"\n'
        f'[storage]\nroot = "{work / "store"}"\nmin_free_bytes = 0\n'
        f'[database]\nurl = "{url}"\n'
    )
    return config


def new_database(engine: str, work: Path, name: str) -> tuple[str, str | None]:
    """An empty database on `engine` ('sqlite' or 'postgresql'): its URL, and the
    PostgreSQL database's name to drop afterwards (None for SQLite)."""
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{work / f'{name}.sqlite'}", None
    created = postgres.create_database()
    return postgres.database_url(created), created
