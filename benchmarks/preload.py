"""Fill a running server with instances before a query or retrieve benchmark, and time it.

One DCMTK storescu per folder, all at once; each scans its folder (`+sd +r`),
so a folder of 25,000 files needs no 25,000-argument command line.
"""

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import dcmtk
from benchmarks.processes import DCMTK_ENV, log_tail, wait_all
from benchmarks.runs import CALLING_AE_TITLE
from benchmarks.servers import Server


@dataclass(frozen=True, slots=True)
class Load:
    """One fill of one server: what was sent, how long it took, what the server then held."""

    target: str
    instances: int  # sent this time
    bytes: int
    seconds: float
    held: int  # instances the server holds afterwards, from earlier loads too
    error: str | None = None

    @property
    def instances_per_second(self) -> float:
        return self.instances / self.seconds if self.seconds and self.error is None else 0.0


def _storescu(server: Server, inputs: list[str], log: Path) -> subprocess.Popen[bytes]:
    argv = [dcmtk.tool("storescu"), "-aet", CALLING_AE_TITLE, "-aec", server.ae_title]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*argv, "127.0.0.1", str(server.port), *inputs],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=DCMTK_ENV,
        )


def store(
    server: Server, inputs: Sequence[Sequence[Path]], logdir: Path, timeout: float
) -> tuple[float, list[int]]:
    """Send each group of files or folders over its own association, all at once; return
    the seconds until the last storescu exited and their exit codes."""
    logdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    processes = []
    for number, group in enumerate(inputs):
        args = [str(path) for path in group]
        if any(path.is_dir() for path in group):
            args = ["+sd", "+r", *args]
        processes.append(_storescu(server, args, logdir / f"storescu-{number}.log"))
    codes = wait_all(processes, max(1.0, started + timeout - time.perf_counter()))
    return time.perf_counter() - started, codes


def load(
    target: str,
    server: Server,
    inputs: Sequence[Sequence[Path]],
    *,
    expected: tuple[int, int, int],
    logdir: Path,
    timeout: float,
) -> Load:
    """Send `inputs` and check that the server then holds `expected[2]` instances;
    `expected` is (instances sent, their bytes, instances held afterwards)."""
    sent, size, held_after = expected
    try:
        seconds, codes = store(server, inputs, logdir, timeout)
    except subprocess.TimeoutExpired:
        return Load(target, sent, size, timeout, 0, f"storescu still running after {timeout} s")
    held = server.stored()
    error = None
    if any(codes):
        failed = next(n for n, code in enumerate(codes) if code)
        error = f"storescu exit codes {codes}: {log_tail(logdir / f'storescu-{failed}.log', 3)}"
    elif held != held_after:
        error = f"holds {held} instances, expected {held_after}: {log_tail(server.log, 3)}"
    return Load(target, sent, size, seconds, held, error)
