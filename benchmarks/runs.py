"""One measured ingest run: start a server empty, send files with storescu, check what it stored."""

import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from benchmarks import dcmtk
from benchmarks.dataset import Kind
from benchmarks.processes import (
    DCMTK_DEFAULTS_ENV,
    DCMTK_ENV,
    PeakMemory,
    ServerFailed,
    log_tail,
    wait_all,
)
from benchmarks.servers import Server, Target, shutdown

CALLING_AE_TITLE = "BENCH"
KIND_LABELS = {Kind.SMALL: "SC 64x64 8-bit", Kind.CT: "CT 512x512 16-bit"}


@dataclass(frozen=True, slots=True)
class Workload:
    """A set of instances of one kind, sent over some number of parallel associations."""

    kind: Kind
    count: int
    associations: int
    # storescu as it comes, Nagle's algorithm on: how a modality with default settings sends.
    client_defaults: bool = False

    @property
    def name(self) -> str:
        plural = "s" if self.associations > 1 else ""
        name = f"{KIND_LABELS[self.kind]} x{self.count}, {self.associations} association{plural}"
        return f"{name}, storescu defaults (Nagle on)" if self.client_defaults else name


@dataclass(frozen=True, slots=True)
class RunResult:
    """The raw figures of one run; `error` is set when the run does not count."""

    workload: str
    target: str
    run: int
    instances: int
    bytes: int
    seconds: float = 0.0
    stored: int = 0
    peak_rss_mb: float = 0.0
    exit_codes: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def instances_per_second(self) -> float:
        return self.instances / self.seconds if self.seconds and self.error is None else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds and self.error is None else 0.0


def split(files: list[Path], groups: int) -> list[list[Path]]:
    """Contiguous groups of near-equal size, so each association carries whole studies."""
    n = len(files)
    return [files[k * n // groups : (k + 1) * n // groups] for k in range(groups)]


def send(
    server: Server,
    groups: list[list[Path]],
    logdir: Path,
    timeout: float,
    client_defaults: bool = False,
) -> tuple[float, list[int]]:
    """Run one storescu per group at once; return seconds to the last exit, and exit codes."""
    env = DCMTK_DEFAULTS_ENV if client_defaults else DCMTK_ENV
    processes = []
    started = time.perf_counter()
    for number, group in enumerate(groups):
        with (logdir / f"storescu-{number}.log").open("wb") as log:
            argv = [dcmtk.tool("storescu"), "-aet", CALLING_AE_TITLE, "-aec", server.ae_title]
            argv += ["127.0.0.1", str(server.port), *map(str, group)]
            processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env))
    codes = wait_all(processes, max(1.0, started + timeout - time.perf_counter()))
    return time.perf_counter() - started, codes


def _failure(result: RunResult, logdir: Path, server_log: Path) -> str | None:
    """Why a run does not count: a storescu failed, or not every instance was stored."""
    if any(result.exit_codes):
        failed = next(n for n, code in enumerate(result.exit_codes) if code)
        tail = log_tail(logdir / f"storescu-{failed}.log", 5)
        return f"storescu exit codes {result.exit_codes}:\n{tail}"
    if result.stored != result.instances:
        return f"stored {result.stored} of {result.instances} instances:\n{log_tail(server_log, 5)}"
    return None


def run_once(
    target: Target, workload: Workload, files: list[Path], number: int, timeout: float
) -> RunResult:
    """Measure one run against a freshly started, empty server; never raises for a bad run."""
    size = sum(path.stat().st_size for path in files)
    blank = RunResult(workload.name, target.name, number, len(files), size)
    with tempfile.TemporaryDirectory(prefix=f"ingest-{target.name}-") as tmp:
        workdir = Path(tmp)
        try:
            server = target.start(workdir)
        except ServerFailed as exc:
            return replace(blank, error=f"server did not start: {exc}")
        try:
            with PeakMemory(server.process.pid) as memory:
                groups = split(files, workload.associations)
                seconds, codes = send(server, groups, workdir, timeout, workload.client_defaults)
                stored = server.stored()
                peak = memory.peak_mb()
        except subprocess.TimeoutExpired:
            return replace(blank, error=f"storescu still running after {timeout:.0f} s")
        except OSError as exc:
            return replace(blank, error=f"{type(exc).__name__}: {exc}\n{log_tail(server.log)}")
        finally:
            shutdown(server)
        result = replace(blank, seconds=seconds, stored=stored, peak_rss_mb=peak, exit_codes=codes)
        return replace(result, error=_failure(result, workdir, server.log))
