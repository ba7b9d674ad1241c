"""Ingest benchmark: instances/s and MB/s that storage SCPs sustain from DCMTK storescu.

Each workload (small images or 512x512 CT, over 1, 4 or 8 parallel associations)
is sent to each target in turn, every run to a freshly started, empty server;
wall time runs from the first storescu's start to the last one's exit. A run
counts only if every storescu exits 0 and the server holds every instance.
The default scale (full: 1,000 small and 256 CT instances) keeps the clients'
start-up a small part of each run. pacs-pg runs when a PostgreSQL server answers at
PACS_TEST_POSTGRES_URL, pacs-baseline when PACS_BASELINE_SRC names another checkout
of pacs, the calib-* targets (benchmarks.calibration) when the calibration receiver
is found. Temporary stores go under $TMPDIR. Usage (`python -m benchmarks` runs
every benchmark):
python -m benchmarks.ingest [--scale tiny|small|full]
                            [--targets pacs,pacs-baseline,pacs-pg,orthanc,storescp,...]
                            [--runs 3] [--json OUT] [--markdown OUT]
"""

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import dcmtk
from benchmarks.dataset import Kind, generate
from benchmarks.report import document, environment, markdown, summarise
from benchmarks.runs import RunResult, Workload, run_once
from benchmarks.servers import Target
from benchmarks.targets import TARGETS

SCALES: dict[str, dict[Kind, int]] = {
    "tiny": {Kind.SMALL: 8, Kind.CT: 8},
    "small": {Kind.SMALL: 200, Kind.CT: 64},
    "full": {Kind.SMALL: 1000, Kind.CT: 256},
}
ASSOCIATIONS = (1, 4, 8)
# Small instances from a storescu left at its defaults: fewer, since a receiver that waits
# a delayed ACK per instance takes tens of milliseconds for each.
CLIENT_DEFAULTS_COUNT = 200
# A CT series of 64 slices per study; a few dozen captures per study for the small images.
PER_STUDY = {Kind.SMALL: 50, Kind.CT: 64}


def workloads(scale: str) -> list[Workload]:
    """Small images first, then CT; each over one association, then four, then eight; last,
    small images from a storescu left at its defaults."""
    counts = SCALES[scale]
    plan = [Workload(kind, counts[kind], n) for kind in counts for n in ASSOCIATIONS]
    small = min(CLIENT_DEFAULTS_COUNT, counts[Kind.SMALL])
    return [*plan, Workload(Kind.SMALL, small, 1, client_defaults=True)]


def make_datasets(scale: str, data_dir: Path) -> dict[Kind, list[Path]]:
    """Write this scale's instances (deterministic, so every invocation sends the same bytes)."""
    datasets = {}
    for kind, count in SCALES[scale].items():
        studies = -(-count // PER_STUDY[kind])
        paths = generate(data_dir / kind.value, kind, count, studies=studies, patients=studies)
        datasets[kind] = paths
    return datasets


def dataset_sizes(datasets: dict[Kind, list[Path]]) -> dict[str, dict[str, int]]:
    sizes = {}
    for kind, paths in datasets.items():
        total = sum(path.stat().st_size for path in paths)
        sizes[kind.value] = {"count": len(paths), "bytes": total, "mean_bytes": total // len(paths)}
    return sizes


def run_all(
    targets: Sequence[Target],
    plan: Sequence[Workload],
    datasets: dict[Kind, list[Path]],
    runs: int,
    timeout: float,
) -> list[RunResult]:
    """Every run of every target on every workload, targets interleaved within each run."""
    results = []
    for workload in plan:
        for number in range(1, runs + 1):
            for target in targets:
                files = datasets[workload.kind][: workload.count]
                result = run_once(target, workload, files, number, timeout)
                status = result.error or f"{result.instances_per_second:,.0f} inst/s"
                print(f"{workload.name} | {target.name} | run {number}: {status}", file=sys.stderr)
                results.append(result)
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=list(SCALES), default="full")
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help="comma-separated, from: " + ", ".join(TARGETS)
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median reported)")
    parser.add_argument("--json", type=Path, help="write the full results here")
    parser.add_argument("--markdown", type=Path, help="write the table here (also printed)")
    parser.add_argument("--data-dir", type=Path, help="where to write the dataset (default: temp)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per run")
    return parser


def _choose_targets(
    parser: argparse.ArgumentParser, names: str
) -> tuple[list[Target], dict[str, str]]:
    """The requested targets that can run here, and why the others cannot."""
    chosen, skipped = [], {}
    for name in filter(None, (part.strip() for part in names.split(","))):
        if name not in TARGETS:
            parser.error(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
        reason = TARGETS[name].missing()
        if reason is None:
            chosen.append(TARGETS[name])
        else:
            skipped[name] = reason
    return chosen, skipped


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if dcmtk.find("storescu") is None:
        parser.error("DCMTK's storescu is not on PATH")
    targets, skipped = _choose_targets(parser, args.targets)
    for name, reason in skipped.items():
        print(f"skipping {name}: {reason}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="ingest-data-") as tmp:
        datasets = make_datasets(args.scale, args.data_dir or Path(tmp))
        results = run_all(targets, workloads(args.scale), datasets, args.runs, args.timeout)
        sizes = dataset_sizes(datasets)
    summaries = summarise(results)
    table = markdown(summaries, args.runs, skipped)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        context = {
            "scale": args.scale,
            "runs_per_figure": args.runs,
            "environment": environment([t.name for t in targets], Path(tempfile.gettempdir())),
            "datasets": sizes,
            "skipped": skipped,
        }
        args.json.write_text(json.dumps(document(summaries, **context), indent=2) + "\n")
    return 0 if all(summary.ok for summary in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
