"""Where a storage SCP's time goes while it ingests: py-spy samples and system-call counts.

One ingest workload (as `benchmarks.ingest` sends it) goes to one target while py-spy
samples the server (`--idle` and `--gil` as asked) and, with `--strace`, `strace -c -f`
counts its system calls. Printed per instance: CPU milliseconds in the functions that
take the most (inclusive), and calls of each system call (futex counts the hand-offs
between threads). The figures are for comparing two versions or two remedies in one
session; py-spy and strace slow the server, so its rate here is not its rate.

python -m benchmarks.profile_ingest [--target pacs] [--kind small|ct] [--count 1000]
                                    [--associations 1] [--idle] [--gil] [--strace]
                                    [--top 30] [--out DIR]
Needs py-spy (`pip install -e ".[profile]"`) and, for --strace, strace (`apt-get install strace`).
"""

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from benchmarks.dataset import Kind, generate
from benchmarks.runs import send, split
from benchmarks.servers import shutdown
from benchmarks.targets import TARGETS

SAMPLE_RATE = 250  # per second
PER_STUDY = {Kind.SMALL: 50, Kind.CT: 64}


def frame_name(frame: str) -> str:
    """'read_header (pacs/dicom/header.py:33)' -> 'read_header (pacs/dicom/header.py)'."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0] if where else ""
    return f"{name} ({path})" if path else name


def inclusive_samples(lines: Iterable[str]) -> tuple[int, collections.Counter[str]]:
    """Total samples, and samples per function counted once per stack it appears in
    (py-spy's raw format: `frame;frame;... COUNT`, outermost first)."""
    total = 0
    counts: collections.Counter[str] = collections.Counter()
    for line in lines:
        stack, _, number = line.rstrip("\n").rpartition(" ")
        if not stack or not number.isdigit():
            continue
        samples = int(number)
        total += samples
        for name in {frame_name(frame) for frame in stack.split(";")}:
            counts[name] += samples
    return total, counts


def strace_counts(text: str) -> dict[str, int]:
    """Calls per system call from `strace -c`'s summary table."""
    calls: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(fields) >= 5 and fields[3].isdigit() and not fields[-1].startswith("total"):
            calls[fields[-1]] = int(fields[3])
    return calls


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit(f"{name} is not installed: {hint}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="pacs", choices=sorted(TARGETS))
    parser.add_argument("--kind", choices=[k.value for k in Kind], default=Kind.SMALL.value)
    parser.add_argument("--count", type=int, default=1000, help="instances sent")
    parser.add_argument("--associations", type=int, default=1)
    parser.add_argument("--idle", action="store_true", help="py-spy --idle: count waiting too")
    parser.add_argument("--gil", action="store_true", help="py-spy --gil: only the GIL holder")
    parser.add_argument("--strace", action="store_true", help="count system calls as well")
    parser.add_argument("--top", type=int, default=30, help="functions listed")
    parser.add_argument("--out", type=Path, help="keep the raw profile and strace output here")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)

    py_spy = _tool("py-spy", "pip install py-spy")
    strace = _tool("strace", "apt-get install -y strace") if args.strace else None
    target = TARGETS[args.target]
    if (missing := target.missing()) is not None:
        raise SystemExit(f"{args.target} is not available: {missing}")
    kind = Kind(args.kind)
    with tempfile.TemporaryDirectory(prefix="profile-ingest-") as tmp:
        work = Path(tmp)
        out = args.out or work
        out.mkdir(parents=True, exist_ok=True)
        studies = -(-args.count // PER_STUDY[kind])
        files = generate(work / "data", kind, args.count, studies=studies, patients=studies)
        (work / "server").mkdir()
        server = target.start(work / "server")
        pid = server.process.pid
        try:
            spy_argv = [py_spy, "record", "-p", str(pid), "-r", str(SAMPLE_RATE), "-f", "raw"]
            spy_argv += ["-o", str(out / "profile.txt"), "--nonblocking"]
            spy_argv += ["--idle"] * args.idle + ["--gil"] * args.gil
            spy = subprocess.Popen(spy_argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            tracer = None
            if strace is not None:
                trace_argv = [strace, "-c", "-f", "-p", str(pid), "-o", str(out / "strace.txt")]
                tracer = subprocess.Popen(trace_argv, stderr=subprocess.DEVNULL)
            seconds, codes = send(server, split(files, args.associations), work, args.timeout)
            for process in (spy, tracer):
                if process is not None:
                    process.send_signal(signal.SIGINT)
                    process.wait(timeout=60)
            stored = server.stored()
        finally:
            shutdown(server)
    if any(codes) or stored != len(files):
        print(f"run does not count: exit codes {codes}, stored {stored} of {len(files)}")
        return 1
    report(args, len(files), seconds, out)
    return 0


def report(args: argparse.Namespace, instances: int, seconds: float, out: Path) -> None:
    """Print milliseconds per instance by function, and system calls per instance."""
    profile = out / "profile.txt"
    with profile.open() as lines:
        total, counts = inclusive_samples(lines)
    per_instance_ms = 1000.0 / SAMPLE_RATE / instances
    print(
        f"{args.target}: {instances} {args.kind} instances over {args.associations} "
        f"association(s) in {seconds:.1f} s under the profiler; {total} samples"
        f"{' (idle counted)' if args.idle else ''}{' (GIL holder only)' if args.gil else ''}"
    )
    print("\n| ms per instance | share | function |\n|---:|---:|---|")
    for name, samples in counts.most_common(args.top):
        print(f"| {samples * per_instance_ms:.3f} | {samples / total:.0%} | {name} |")
    trace = out / "strace.txt"
    if args.strace and trace.exists():
        calls = strace_counts(trace.read_text())
        print("\n| system call | calls per instance |\n|---|---:|")
        for name, number in sorted(calls.items(), key=lambda item: -item[1])[: args.top]:
            print(f"| {name} | {number / instances:.2f} |")


if __name__ == "__main__":
    raise SystemExit(main())
