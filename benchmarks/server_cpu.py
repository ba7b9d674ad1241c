"""Server CPU per instance while a storage SCP ingests: user + system time of its process tree.

Each run starts the target empty, sends one workload with DCMTK storescu (as
`benchmarks.ingest` does), and reads the server's CPU time from /proc before and
after; the figure is (after - before) / instances, so start-up is not counted. Given
for the whole process tree and for its main thread alone (pacs's event loop, where
the network layer runs), whose figure the other threads' contention disturbs less. Targets
alternate run by run, so two versions (pacs and pacs-baseline) meet the same noise.
On a shared machine the wall-clock rate varies far more than CPU per instance does.

python -m benchmarks.server_cpu [--targets pacs,pacs-baseline] [--kinds small,ct]
                                [--small 1000] [--ct 256] [--associations 1] [--runs 3]
"""

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from benchmarks.dataset import Kind, generate
from benchmarks.processes import descendants
from benchmarks.runs import send, split
from benchmarks.servers import shutdown
from benchmarks.targets import TARGETS

PER_STUDY = {Kind.SMALL: 50, Kind.CT: 64}
TICKS = os.sysconf("SC_CLK_TCK")


def _ticks(stat: Path) -> int:
    try:
        fields = stat.read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User + system seconds of a process tree (threads included), and of the main thread
    of the process that listens (the tree's leaf: the server, not a wrapper)."""
    members = [pid, *descendants(pid)]
    total = sum(_ticks(Path(f"/proc/{member}/stat")) for member in members)
    leaf = members[-1]
    return total / TICKS, _ticks(Path(f"/proc/{leaf}/task/{leaf}/stat")) / TICKS


Run = tuple[float, float, float]  # CPU ms per instance: process, main thread; instances/s


def measure(target: str, files: list[Path], associations: int, work: Path) -> Run:
    """One run: server CPU ms per instance (process, main thread), and instances per second."""
    server_dir = work / f"server-{target}"
    server_dir.mkdir()
    server = TARGETS[target].start(server_dir)
    try:
        before = cpu_seconds(server.process.pid)
        seconds, codes = send(server, split(files, associations), server_dir, 600.0)
        after = cpu_seconds(server.process.pid)
        stored = server.stored()
    finally:
        shutdown(server)
    if any(codes) or stored != len(files):
        raise SystemExit(f"{target}: run does not count: exit codes {codes}, stored {stored}")
    n = len(files)
    return 1000 * (after[0] - before[0]) / n, 1000 * (after[1] - before[1]) / n, n / seconds


def _list(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="pacs,pacs-baseline")
    parser.add_argument("--kinds", default="small,ct")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--ct", type=int, default=256)
    parser.add_argument("--associations", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    targets = args.targets.split(",")
    for name in targets:
        if (missing := TARGETS[name].missing()) is not None:
            raise SystemExit(f"{name} is not available: {missing}")
    counts = {Kind.SMALL: args.small, Kind.CT: args.ct}
    print(f"cores: {os.cpu_count()}; {args.associations} association(s); median of {args.runs}")
    print(
        "| target | kind | server CPU ms/instance (runs) | main thread ms/instance (runs) "
        "| instances/s |\n|---|---|---:|---:|---:|"
    )
    with tempfile.TemporaryDirectory(prefix="server-cpu-") as tmp:
        for kind in map(Kind, args.kinds.split(",")):
            count = counts[kind]
            studies = -(-count // PER_STUDY[kind])
            files = generate(Path(tmp) / kind.value, kind, count, studies=studies, patients=studies)
            results: dict[str, list[Run]] = {name: [] for name in targets}
            for run in range(args.runs):
                for name in targets:
                    with tempfile.TemporaryDirectory(dir=tmp, prefix=f"run{run}-") as work:
                        results[name].append(measure(name, files, args.associations, Path(work)))
            for name in targets:
                runs = results[name]
                cpu, main_thread = ([r[k] for r in runs] for k in (0, 1))
                rate = statistics.median(r[2] for r in runs)
                print(
                    f"| {name} | {kind.value} | {statistics.median(cpu):.2f} ({_list(cpu)}) "
                    f"| {statistics.median(main_thread):.2f} ({_list(main_thread)}) | {rate:.0f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
