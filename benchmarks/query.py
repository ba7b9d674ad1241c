"""Query benchmark: p50/p95 C-FIND latency of a query mix, at two archive sizes.

A synthetic population (benchmarks.population: 10 small instances per study,
about two studies per patient, ten years of dates, nine modalities) is loaded
into every target with parallel DCMTK storescu, timed; then the query mix
(benchmarks.query_mix) runs over one kept-open association per target, each
query repeated with varied values. Then more studies are loaded, up to the
larger size, and the mix runs again. Each figure is the median over runs of
that run's p50/p95; targets are interleaved within each run, and every answer
is checked against the population. `--scale medium` is the smaller size of
`full` alone (10,000 instances), for several runs in minutes. Temporary stores
go under $TMPDIR. Usage (`python -m benchmarks` runs every benchmark):
python -m benchmarks.query [--scale tiny|small|medium|full] [--targets pacs,pacs-baseline,...]
                           [--runs 3] [--repeats N] [--json OUT] [--markdown OUT]
"""

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import dcmtk
from benchmarks.find_client import FindClient, FindFailed
from benchmarks.population import Study, studies
from benchmarks.population_files import write_studies
from benchmarks.preload import Load, load
from benchmarks.processes import ServerFailed
from benchmarks.qr_targets import QR_TARGETS, QRTarget, choose
from benchmarks.query_mix import Case, Observation, check, make_cases
from benchmarks.query_report import MixRun, document, markdown
from benchmarks.report import environment
from benchmarks.servers import Server, shutdown

# Studies at each size, smallest first; every study holds INSTANCES_PER_STUDY instances.
SCALES = {"tiny": (10, 30), "small": (200, 1_000), "medium": (1_000,), "full": (1_000, 10_000)}
REPEATS = {"tiny": 5, "small": 100, "medium": 100, "full": 100}
INSTANCES_PER_STUDY = 10
ASSOCIATIONS = 4
ECHOES = 20
SEED = 1


def population_label(study_count: int) -> str:
    return f"{study_count * INSTANCES_PER_STUDY:,} inst / {study_count:,} studies"


def run_mix(target: str, server: Server, cases: Sequence[Case], label: str, run: int) -> MixRun:
    """Send every case once over one association, timing each; never raises for a bad run."""
    observations, echoes = [], []
    try:
        with FindClient(server.port, server.ae_title) as client:
            echoes = [client.echo() for _ in range(ECHOES)]
            for number, case in enumerate(cases):
                seconds, responses = client.find(case.identifier)
                problems = check(case, responses)
                observations.append(
                    Observation(case.query, case.value, number, seconds, len(responses), problems)
                )
    except (FindFailed, OSError, RuntimeError) as exc:
        return MixRun(label, target, run, observations, echoes, f"{type(exc).__name__}: {exc}")
    return MixRun(label, target, run, observations, echoes)


def _start_all(targets: Sequence[QRTarget], workdir: Path) -> dict[str, Server]:
    servers: dict[str, Server] = {}
    try:
        for target in targets:
            (workdir / target.name).mkdir()
            servers[target.name] = target.start(workdir / target.name, ())
    except BaseException:
        for server in servers.values():
            shutdown(server)
        raise
    return servers


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _grow(
    servers: dict[str, Server], new: Sequence[Study], held: int, data: Path, timeout: float
) -> tuple[list[Load], int]:
    """Write `new` studies' files and load them into every server; return loads, held after."""
    started = time.perf_counter()
    written = write_studies(new, data, ASSOCIATIONS)
    _say(f"wrote {written.instances:,} instances in {time.perf_counter() - started:.0f} s")
    held += written.instances
    loads = []
    for name, server in servers.items():
        expected = (written.instances, written.bytes, held)
        inputs = [[folder] for folder in written.directories]
        logdir = data / f"logs-{name}"
        outcome = load(name, server, inputs, expected=expected, logdir=logdir, timeout=timeout)
        _say(f"load {name}: {outcome.error or f'{outcome.instances_per_second:,.0f} inst/s'}")
        loads.append(outcome)
    return loads, held


def run_all(
    servers: dict[str, Server], args: argparse.Namespace, data: Path
) -> tuple[list[MixRun], list[tuple[str, Load]], dict[str, dict[str, int]]]:
    """Grow the archive size by size; at each, run the query mix `args.runs` times per target."""
    sizes = SCALES[args.scale]
    everyone = list(studies(SEED, sizes[-1], INSTANCES_PER_STUDY))
    runs: list[MixRun] = []
    loads: list[tuple[str, Load]] = []
    populations: dict[str, dict[str, int]] = {}
    held = 0
    for before, count in zip((0, *sizes), sizes, strict=False):
        label = population_label(count)
        grown, held = _grow(
            servers, everyone[before:count], held, data / f"studies-{count}", args.timeout
        )
        loads += [(label, outcome) for outcome in grown]
        present = everyone[:count]
        populations[label] = {
            "patients": len({s.patient.patient_id for s in present}),
            "studies": count,
            "series": sum(len(s.series) for s in present),
            "instances": held,
        }
        cases = make_cases(present, args.repeats or REPEATS[args.scale], SEED)
        for number in range(1, args.runs + 1):
            for name, server in servers.items():
                result = run_mix(name, server, cases, label, number)
                _say(f"{label} | {name} | run {number}: {result.error or 'ok'}")
                runs.append(result)
    return runs, loads, populations


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=list(SCALES), default="small")
    parser.add_argument("--targets", default=",".join(QR_TARGETS), help="comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median reported)")
    parser.add_argument("--repeats", type=int, help="queries of each kind per run")
    parser.add_argument("--json", type=Path, help="write the full results here")
    parser.add_argument("--markdown", type=Path, help="write the tables here (also printed)")
    parser.add_argument("--data-dir", type=Path, help="where to write the dataset (default: temp)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per load")
    return parser


def _header(args: argparse.Namespace, repeats: int) -> list[str]:
    return [
        f"C-FIND (Study Root) latency, {args.runs} run(s), each query about {repeats} times a run "
        "with varied values (ModalitiesInStudy a fifth as often); figures are medians over "
        "runs of each run's p50/p95, in ms, one kept-open association per target "
        "(a blocking client on pynetdicom's codecs, in the benchmark process; the clock runs "
        "from sending the C-FIND-RQ to the final response); ratio < 1: faster than orthanc.",
        f"Population: {INSTANCES_PER_STUDY} small instances (8x8 pixels) per study, loaded "
        f"with {ASSOCIATIONS} parallel DCMTK storescu; load timed once per size.",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if dcmtk.find("storescu") is None:
        parser.error("DCMTK's storescu is not on PATH")
    try:
        targets, skipped = choose(args.targets)
    except ValueError as exc:
        parser.error(str(exc))
    for name, reason in skipped.items():
        _say(f"skipping {name}: {reason}")
    with tempfile.TemporaryDirectory(prefix="query-") as tmp:
        try:
            servers = _start_all(targets, Path(tmp))
        except ServerFailed as exc:
            _say(f"a server did not start: {exc}")
            return 1
        try:
            runs, loads, populations = run_all(servers, args, args.data_dir or Path(tmp) / "data")
        finally:
            for server in servers.values():
                shutdown(server)
    repeats = args.repeats or REPEATS[args.scale]
    table = markdown(runs, loads, _header(args, repeats))
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        env = environment([t.name for t in targets], Path(tempfile.gettempdir()))
        context = {"scale": args.scale, "runs_per_figure": args.runs, "repeats": repeats}
        context |= {"environment": env, "populations": populations, "skipped": skipped}
        args.json.write_text(json.dumps(document(runs, loads, **context), indent=2) + "\n")
    failed = any(r.error for r in runs) or any(load.error for _, load in loads)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
