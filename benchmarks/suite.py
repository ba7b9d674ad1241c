"""Every benchmark in one command: ingest, query and retrieve in turn, then one summary of them.

Each workload runs through its own module's main() on the requested targets it
supports (ingest: every target of benchmarks.targets; query and retrieve: pacs,
pacs-baseline, pacs-pg, orthanc), targets interleaved within each run; a target
that cannot run here is skipped with its reason. Each workload writes
DIR/<workload>.json and .md; then DIR/summary.md gathers the tables under headings,
with the machine, versions and command line (and is printed), and DIR/summary.json
the JSON documents under the workloads' names. Without --scale each workload runs
at its own default: ingest 1,000 small and 256 CT instances over 1, 4 and 8
associations; retrieve a 256-instance CT study and a 2,000-instance one; query
2,000 and 10,000 instances; scale (benchmarks.scale) runs only when named in
--workloads. A workload that fails does not stop the others; the
exit status is 1 if any failed.
Usage:
python -m benchmarks [--scale tiny|small|full] [--targets pacs,pacs-baseline,orthanc,...]
                     [--runs 3] [--workloads ingest,query,retrieve,scale]
                     [--out benchmark-results/]
"""

import argparse
import json
import shlex
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import ingest, query, retrieve, scale
from benchmarks.qr_targets import QR_TARGETS
from benchmarks.report import environment
from benchmarks.targets import TARGETS


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One workload's module: its entry point and the targets it can measure."""

    title: str
    main: Callable[[Sequence[str] | None], int]
    targets: Sequence[str]


BENCHMARKS = {
    "ingest": Benchmark("Ingest", ingest.main, tuple(TARGETS)),
    "query": Benchmark("Query", query.main, tuple(QR_TARGETS)),
    "retrieve": Benchmark("Retrieve", retrieve.main, tuple(QR_TARGETS)),
    "scale": Benchmark("Scale", scale.main, scale.TARGETS),
}
# The scale workload fills a large index first (minutes at full scale): asked for by name.
DEFAULT_WORKLOADS = ("ingest", "query", "retrieve")
ALL_TARGETS = tuple(dict.fromkeys(name for b in BENCHMARKS.values() for name in b.targets))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one workload left: its exit status, and its table and JSON document if it wrote them."""

    workload: str
    status: int
    table: str | None = None
    document: dict[str, Any] | None = None
    note: str | None = None  # why it failed, or why it did not run


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _exit_status(benchmark: Benchmark, argv: Sequence[str]) -> tuple[int, str | None]:
    """Run one benchmark; its crash or usage error fails that workload, not the whole suite."""
    try:
        return benchmark.main(argv), None
    except SystemExit as exc:  # argparse's usage errors, a DCMTK tool missing
        return (exc.code if isinstance(exc.code, int) else 1), f"exited: {exc.code}"
    except Exception as exc:  # a bug in one benchmark: keep the figures the others produce
        traceback.print_exc()
        return 1, f"{type(exc).__name__}: {exc}"


def run_workload(name: str, targets: Sequence[str], args: argparse.Namespace) -> Outcome:
    """Run one workload on those of `targets` it supports, writing its files into args.out."""
    benchmark = BENCHMARKS[name]
    supported = [target for target in targets if target in benchmark.targets]
    if not supported:
        return Outcome(name, 0, note=f"Not run: none of {', '.join(targets)} serves {name}.")
    json_out, markdown_out = args.out / f"{name}.json", args.out / f"{name}.md"
    for stale in (json_out, markdown_out):
        stale.unlink(missing_ok=True)
    argv = ["--runs", str(args.runs), "--targets", ",".join(supported)]
    argv += ["--scale", args.scale] if args.scale else []
    argv += ["--json", str(json_out), "--markdown", str(markdown_out)]
    _say(f"== python -m benchmarks.{name} {shlex.join(argv)}")
    status, note = _exit_status(benchmark, argv)
    return Outcome(
        name,
        status,
        markdown_out.read_text() if markdown_out.exists() else None,
        json.loads(json_out.read_text()) if json_out.exists() else None,
        note,
    )


def _section(outcome: Outcome) -> list[str]:
    parts = []
    if outcome.status:
        reason = f": {outcome.note}" if outcome.note else ""
        parts.append(f"**FAILED** (exit status {outcome.status}){reason}")
    elif outcome.note:
        parts.append(outcome.note)
    if outcome.table:
        parts.append(outcome.table.rstrip())
    return ["", f"## {BENCHMARKS[outcome.workload].title}", "", "\n\n".join(parts)]


def summary_markdown(outcomes: Sequence[Outcome], env: dict[str, Any], command: str) -> str:
    """The workloads' tables under headings, after the command and the machine they ran on."""
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {env['cores']} cores, {env['platform']}; temporary files on "
        f"{env['workdir_filesystem']} ({env['workdir']}).",
        "",
        "Versions:",
        "",
        *(f"- {name}: {value}" for name, value in env["versions"].items()),
    ]
    for outcome in outcomes:
        lines += _section(outcome)
    return "\n".join(lines) + "\n"


def summary_document(
    outcomes: Sequence[Outcome], env: dict[str, Any], command: str
) -> dict[str, Any]:
    """Each workload's JSON document under its name (its status and note if it wrote none)."""
    return {
        "command": command,
        "environment": env,
        "exit_status": {outcome.workload: outcome.status for outcome in outcomes},
    } | {
        outcome.workload: outcome.document
        if outcome.document is not None
        else {"exit_status": outcome.status, "note": outcome.note}
        for outcome in outcomes
    }


def _names(
    parser: argparse.ArgumentParser, text: str, known: Sequence[str], what: str
) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if unknown := [name for name in names if name not in known]:
        parser.error(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scale", choices=list(ingest.SCALES), help="one scale for all (default: each its own)"
    )
    parser.add_argument("--targets", default=",".join(ALL_TARGETS), help="comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median reported)")
    parser.add_argument(
        "--workloads",
        default=",".join(DEFAULT_WORKLOADS),
        help=f"comma-separated, of {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmark-results"), help="directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    args = parser.parse_args(arguments)
    targets = _names(parser, args.targets, ALL_TARGETS, "target")
    workloads = _names(parser, args.workloads, list(BENCHMARKS), "workload")
    command = shlex.join([sys.executable, "-m", "benchmarks", *arguments])
    env = environment(targets, Path(tempfile.gettempdir()))
    args.out.mkdir(parents=True, exist_ok=True)
    outcomes = [run_workload(name, targets, args) for name in workloads]
    table = summary_markdown(outcomes, env, command)
    (args.out / "summary.md").write_text(table)
    print(table)
    summary = summary_document(outcomes, env, command)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _say(f"summary: {args.out / 'summary.md'}, {args.out / 'summary.json'}")
    return 1 if any(outcome.status for outcome in outcomes) else 0
