"""Ingest results as a Markdown table and a JSON document, with the environment they came from."""

import dataclasses
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import dcmtk
from benchmarks.runs import RunResult
from benchmarks.servers import command_version, package_version
from benchmarks.targets import TARGETS

REFERENCE_TARGET = "orthanc"
BASELINE_TARGET = "pacs-baseline"  # another version of pacs, when one takes part
SUBJECT_TARGET = "pacs"
# pacs: versions, engines, processes
SUBJECT_TARGETS = frozenset({"pacs", "pacs-baseline", "pacs-pg", "pacs-pg-2w"})


@dataclass(frozen=True, slots=True)
class Summary:
    """Every run of one target on one workload; figures only when every run succeeded."""

    workload: str
    target: str
    runs: list[RunResult]

    @property
    def failures(self) -> list[RunResult]:
        return [run for run in self.runs if run.error is not None]

    @property
    def ok(self) -> bool:
        return bool(self.runs) and not self.failures

    @property
    def instances_per_second(self) -> float:
        return statistics.median(run.instances_per_second for run in self.runs) if self.ok else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return statistics.median(run.megabytes_per_second for run in self.runs) if self.ok else 0.0

    @property
    def peak_rss_mb(self) -> float:
        return max(run.peak_rss_mb for run in self.runs) if self.ok else 0.0


def summarise(results: Iterable[RunResult]) -> list[Summary]:
    """Group runs by (workload, target), keeping the order they were first run in."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for result in results:
        groups.setdefault((result.workload, result.target), []).append(result)
    return [Summary(workload, target, runs) for (workload, target), runs in groups.items()]


def _subjects(against: str) -> frozenset[str]:
    """The targets compared with `against`: every pacs with Orthanc, pacs with its baseline."""
    return SUBJECT_TARGETS if against == REFERENCE_TARGET else frozenset({SUBJECT_TARGET})


def ratio(
    summary: Summary, summaries: Sequence[Summary], against: str = REFERENCE_TARGET
) -> float | None:
    """A pacs target's instances/s over Orthanc's on one workload (or pacs's over
    pacs-baseline's, `against` BASELINE_TARGET); None for other targets, failures."""
    if summary.target not in _subjects(against) or not summary.ok:
        return None
    reference = next(
        (s for s in summaries if s.workload == summary.workload and s.target == against),
        None,
    )
    if reference is None or not reference.ok:
        return None
    return summary.instances_per_second / reference.instances_per_second


def _ratio_cell(summary: Summary, summaries: Sequence[Summary], against: str) -> str:
    if summary.target not in _subjects(against):
        return ""
    value = ratio(summary, summaries, against)
    return "n/a" if value is None else f"{value:.2f}x"


def _headline(error: str) -> str:
    """An error on one line: its first line and, when it has more, its last (a traceback's)."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    text = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"
    return text.replace("|", "/")


def _row(summary: Summary, summaries: Sequence[Summary], references: Sequence[str]) -> str:
    if not summary.ok:
        reason = _headline(summary.failures[0].error or "no runs")
        failed = f"FAILED ({len(summary.failures)}/{len(summary.runs)} runs): {reason}"
        return f"| {summary.workload} | {summary.target} | {failed} | | |" + " |" * len(references)
    cells = "".join(f" {_ratio_cell(summary, summaries, r)} |" for r in references)
    return (
        f"| {summary.workload} | {summary.target} | {summary.instances_per_second:,.0f}"
        f" | {summary.megabytes_per_second:,.1f} | {summary.peak_rss_mb:,.0f} |{cells}"
    )


def markdown(
    summaries: Sequence[Summary],
    runs: int,
    skipped: dict[str, str],
    preamble: Sequence[str] | None = None,
) -> str:
    """The results table, with the conditions it was measured under in lines above it
    (`preamble`, by default the ingest benchmark's)."""
    if preamble is None:
        preamble = [
            f"Ingest with DCMTK storescu, median of {runs} run(s), {os.cpu_count()} cores; "
            "MB = 10^6 bytes of Part 10 files sent; peak RSS of the server process (tree).",
            "Each run starts the server empty, with its default settings (storescp with --fork).",
        ]
    references = [REFERENCE_TARGET]
    if any(summary.target == BASELINE_TARGET for summary in summaries):
        references.append(BASELINE_TARGET)
    ratios = "".join(f" ratio {SUBJECT_TARGET}/{r} (inst/s) |" for r in references)
    lines = [
        *preamble,
        "",
        f"| workload | target | inst/s | MB/s | peak RSS MB |{ratios}",
        "|---|---|---:|---:|---:|" + "---:|" * len(references),
        *(_row(summary, summaries, references) for summary in summaries),
    ]
    lines += [f"\nSkipped {name}: {reason}" for name, reason in skipped.items()]
    return "\n".join(lines) + "\n"


def _git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def _filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (fsync costs differ between ext4 and tmpfs)."""
    best, kind = "", "unknown"
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        mount, fstype = fields[1], fields[2]
        if str(path.resolve()).startswith(mount) and len(mount) > len(best):
            best, kind = mount, fstype
    return kind


def environment(targets: Iterable[str], workdir: Path) -> dict[str, Any]:
    """Versions and machine facts that the figures depend on."""
    versions = {name: TARGETS[name].version() for name in targets}
    versions |= {
        "pacs": package_version("pacs"),
        "pacs_commit": _git_commit(),
        "pydicom": package_version("pydicom"),
        "pynetdicom": package_version("pynetdicom"),
        "storescu": command_version([dcmtk.tool("storescu"), "--version"]),
        "python": platform.python_version(),
    }
    return {
        "versions": versions,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "workdir": str(workdir),
        "workdir_filesystem": _filesystem(workdir),
    }


def document(summaries: Sequence[Summary], **context: Any) -> dict[str, Any]:
    """The JSON report: context, one summary per (workload, target), and every raw run."""
    return {
        **context,
        "summary": [
            {
                "workload": s.workload,
                "target": s.target,
                "ok": s.ok,
                "instances_per_second": s.instances_per_second,
                "megabytes_per_second": s.megabytes_per_second,
                "peak_rss_mb": s.peak_rss_mb,
                "ratio_to_orthanc": ratio(s, summaries),
                "ratio_to_baseline": ratio(s, summaries, BASELINE_TARGET),
            }
            for s in summaries
        ],
        "runs": [
            dataclasses.asdict(run)
            | {
                "instances_per_second": run.instances_per_second,
                "megabytes_per_second": run.megabytes_per_second,
            }
            for s in summaries
            for run in s.runs
        ],
    }
