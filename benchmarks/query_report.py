"""Query benchmark results: latency percentiles, load times, wrong answers, as Markdown and JSON."""

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.preload import Load
from benchmarks.query_mix import Observation, percentile
from benchmarks.report import REFERENCE_TARGET

EXAMPLES = 3  # wrong answers quoted per (population, target, query)


@dataclass(frozen=True, slots=True)
class MixRun:
    """One pass of the query mix over one association to one target."""

    population: str
    target: str
    run: int
    observations: list[Observation] = field(default_factory=list)
    echo_seconds: list[float] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Latency:
    """One query on one target at one population: medians over runs of each run's p50/p95."""

    population: str
    query: str
    target: str
    p50_ms: float
    p95_ms: float
    mean_matches: float
    queries_per_run: int


def _by_query(run: MixRun) -> dict[str, list[Observation]]:
    grouped: dict[str, list[Observation]] = {}
    for observation in run.observations:
        grouped.setdefault(observation.query, []).append(observation)
    return grouped


def latencies(runs: Sequence[MixRun]) -> list[Latency]:
    """Every (population, query, target) measured in every run without error, in run order."""
    cells: dict[tuple[str, str, str], list[list[Observation]]] = {}
    failed = {(r.population, r.target) for r in runs if r.error is not None}
    for run in runs:
        if (run.population, run.target) in failed:
            continue
        for query, observations in _by_query(run).items():
            cells.setdefault((run.population, query, run.target), []).append(observations)
    result = []
    for (population, query, target), per_run in cells.items():
        ms = [[o.seconds * 1000 for o in observations] for observations in per_run]
        matches = [o.matches for observations in per_run for o in observations]
        result.append(
            Latency(
                population,
                query,
                target,
                statistics.median(percentile(values, 0.50) for values in ms),
                statistics.median(percentile(values, 0.95) for values in ms),
                statistics.fmean(matches),
                len(per_run[0]),
            )
        )
    return result


def _ratio(cell: Latency, cells: Sequence[Latency], attribute: str) -> float | None:
    if cell.target == REFERENCE_TARGET:
        return None
    reference = next(
        (
            c
            for c in cells
            if (c.population, c.query, c.target) == (cell.population, cell.query, REFERENCE_TARGET)
        ),
        None,
    )
    if reference is None or not getattr(reference, attribute):
        return None
    return float(getattr(cell, attribute)) / float(getattr(reference, attribute))


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def load_table(loads: Sequence[tuple[str, Load]]) -> list[str]:
    lines = [
        "| population | target | instances sent | seconds | inst/s | instances held |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for population, load in loads:
        if load.error is not None:
            lines.append(f"| {population} | {load.target} | FAILED: {_oneline(load.error)} ||||")
            continue
        lines.append(
            f"| {population} | {load.target} | {load.instances:,} | {load.seconds:,.1f}"
            f" | {load.instances_per_second:,.0f} | {load.held:,} |"
        )
    return lines


def latency_table(cells: Sequence[Latency]) -> list[str]:
    lines = [
        f"| population | query | target | p50 ms | p95 ms | matches/query | p50 vs "
        f"{REFERENCE_TARGET} | p95 vs {REFERENCE_TARGET} |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(
            f"| {c.population} | {c.query} | {c.target} | {c.p50_ms:,.1f} | {c.p95_ms:,.1f}"
            f" | {c.mean_matches:,.1f} | {_cell(_ratio(c, cells, 'p50_ms'))}"
            f" | {_cell(_ratio(c, cells, 'p95_ms'))} |"
        )
    return lines


def _oneline(text: str) -> str:
    return " / ".join(line.strip() for line in text.splitlines() if line.strip()).replace("|", "/")


def wrong_answers(runs: Sequence[MixRun]) -> list[dict[str, Any]]:
    """Per (population, target, query): how many distinct cases got a wrong answer, examples."""
    found: dict[tuple[str, str, str], dict[tuple[int, str], tuple[str, ...]]] = {}
    for run in runs:
        for o in run.observations:
            if o.problems:
                key = (run.population, run.target, o.query)
                found.setdefault(key, {})[o.case, o.value] = o.problems
    return [
        {
            "population": population,
            "target": target,
            "query": query,
            "wrong_cases": len(cases),
            "examples": [
                f"case {n} ({value}): {'; '.join(p[:4])}"
                for (n, value), p in list(cases.items())[:EXAMPLES]
            ],
        }
        for (population, target, query), cases in found.items()
    ]


def count_differences(runs: Sequence[MixRun], subject: str) -> list[dict[str, Any]]:
    """Cases where `subject` and the reference target returned different numbers of matches."""
    counts: dict[tuple[str, str, int, str], dict[str, int]] = {}
    for run in runs:
        if run.run == 1 and run.target in (subject, REFERENCE_TARGET):
            for o in run.observations:
                key = (run.population, o.query, o.case, o.value)
                counts.setdefault(key, {})[run.target] = o.matches
    return [
        {"population": p, "query": q, "case": n, "value": v, **seen}
        for (p, q, n, v), seen in counts.items()
        if len(seen) == 2 and len(set(seen.values())) > 1
    ]


def markdown(
    runs: Sequence[MixRun], loads: Sequence[tuple[str, Load]], header: Sequence[str]
) -> str:
    cells = latencies(runs)
    lines = [*header, "", *load_table(loads), "", *latency_table(cells), ""]
    for target in dict.fromkeys(r.target for r in runs):
        echoes = [s * 1000 for r in runs if r.target == target for s in r.echo_seconds]
        if echoes:
            lines.append(
                f"C-ECHO round trip on the same association, {target}: p50 "
                f"{statistics.median(echoes):.2f} ms (the per-message floor, client and server)."
            )
    lines += [
        f"Run FAILED: {r.population} {r.target} run {r.run}: {_oneline(r.error)}"
        for r in runs
        if r.error is not None
    ]
    wrong = wrong_answers(runs)
    lines.append("")
    lines.append(
        "Answers checked against the generated population (matches, and values of "
        "NumberOf*, ModalitiesInStudy, PatientID, AccessionNumber, StudyDate, Modality):"
    )
    lines += [
        f"- WRONG: {w['population']} {w['target']} {w['query']}: {w['wrong_cases']} case(s);"
        f" {' | '.join(w['examples'])}"
        for w in wrong
    ] or ["- every answer was right."]
    return "\n".join(lines) + "\n"


def document(
    runs: Sequence[MixRun], loads: Sequence[tuple[str, Load]], **context: Any
) -> dict[str, Any]:
    """The JSON report: context, loads, latency cells, wrong answers, per-run percentiles."""
    cells = latencies(runs)
    subjects = sorted({r.target for r in runs} - {REFERENCE_TARGET})
    return {
        **context,
        "loads": [{"population": p} | dataclasses.asdict(load) for p, load in loads],
        "latency": [
            dataclasses.asdict(c)
            | {"p50_ratio_to_orthanc": _ratio(c, cells, "p50_ms")}
            | {"p95_ratio_to_orthanc": _ratio(c, cells, "p95_ms")}
            for c in cells
        ],
        "wrong_answers": wrong_answers(runs),
        "count_differences": {s: count_differences(runs, s) for s in subjects},
        "runs": [
            {
                "population": r.population,
                "target": r.target,
                "run": r.run,
                "error": r.error,
                "echo_p50_ms": statistics.median(r.echo_seconds) * 1000 if r.echo_seconds else None,
                "queries": {
                    query: {
                        "p50_ms": percentile([o.seconds * 1000 for o in obs], 0.50),
                        "p95_ms": percentile([o.seconds * 1000 for o in obs], 0.95),
                        "matches": [o.matches for o in obs],
                    }
                    for query, obs in _by_query(r).items()
                },
            }
            for r in runs
        ],
    }
