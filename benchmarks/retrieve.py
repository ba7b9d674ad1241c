"""Retrieve benchmark: instances/s and MB/s of C-MOVE (to DCMTK storescp) and C-GET (getscu).

A CT study (512x512, 16-bit slices from benchmarks.dataset) is loaded once into
every target with DCMTK storescu; then each run moves it to a DCMTK storescp
(a [[peers]] entry of pacs, a DicomModalities entry of Orthanc) with movescu,
and gets it with getscu, checking that every instance arrived. Targets are
interleaved within each run; each figure is the median over runs, with the
server's peak RSS during the retrieval. Each run also times storescu sending the
study straight to storescp (target "ceiling"): what the receiver itself can ingest,
the bound of any C-MOVE. At --scale full (the default: 256 CT
slices), a 2,000-instance study of small images shows whether server memory
stays flat as a study grows. pacs-baseline runs pacs from the checkout at
PACS_BASELINE_SRC. Temporary stores go under $TMPDIR. Usage (`python -m
benchmarks` runs every benchmark):
python -m benchmarks.retrieve [--scale tiny|small|full] [--targets pacs,orthanc,...]
                              [--runs 3] [--json OUT] [--markdown OUT]
"""

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import dcmtk
from benchmarks.dataset import Kind, generate
from benchmarks.preload import load
from benchmarks.processes import ServerFailed, rss_mb
from benchmarks.qr_targets import QR_TARGETS, choose
from benchmarks.report import document as report_document
from benchmarks.report import environment, markdown, summarise
from benchmarks.retrieve_runs import (
    DESTINATION_AE_TITLE,
    LoadedStudy,
    Operation,
    Retrieval,
    ceiling_once,
    received_transfer_syntax,
    retrieve_once,
    study_uid,
)
from benchmarks.runs import KIND_LABELS, RunResult, split
from benchmarks.servers import Destination, Server, command_version, shutdown
from benchmarks.targets import start_storescp

SCALES = {"tiny": 8, "small": 64, "full": 256}
MEMORY_CASE = 2_000  # instances in the one-study memory case (--scale full only)
DEFAULTS_MAX = 256
ASSOCIATIONS = 4  # storescu processes loading a study
TOOLS = ("storescu", "storescp", "movescu", "getscu")


def make_studies(scale: str, data: Path) -> list[LoadedStudy]:
    """The CT study of this scale, and at full scale the memory case's study too."""
    cases = [(Kind.CT, SCALES[scale], 11)]
    if scale == "full":
        cases.append((Kind.SMALL, MEMORY_CASE, 12))
    studies = []
    for kind, count, seed in cases:
        files = generate(data / kind.value, kind, count, studies=1, patients=1, seed=seed)
        label = f"{KIND_LABELS[kind]} x{count}, one study"
        studies.append(LoadedStudy(label, study_uid(files[0]), files))
    return studies


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _load_all(
    servers: dict[str, Server], studies: Sequence[LoadedStudy], logdir: Path, timeout: float
) -> dict[str, str]:
    """Load every study into every server; return why loading failed, by target."""
    failed, held = {}, 0
    for study in studies:
        held += len(study.files)
        for name, server in servers.items():
            expected = (len(study.files), study.bytes, held)
            inputs = split(study.files, ASSOCIATIONS)
            outcome = load(
                name, server, inputs, expected=expected, logdir=logdir / name, timeout=timeout
            )
            _say(f"load {study.label} into {name}: {outcome.error or f'{outcome.seconds:.1f} s'}")
            if outcome.error:
                failed[name] = outcome.error
    return failed


def run_all(
    servers: dict[str, Server],
    studies: Sequence[LoadedStudy],
    runs: int,
    where: Retrieval,
    destination: Server,
) -> tuple[list[RunResult], dict[str, str]]:
    """Every run of every operation on every study, targets interleaved within each run,
    and in each run the move destination's own ceiling (storescu straight to it)."""
    results, syntaxes = [], {}
    for study in studies:
        for number in range(1, runs + 1):
            ceiling = ceiling_once(destination, study, number=number, where=where)
            rate = ceiling.error or f"{ceiling.instances_per_second:,.0f} inst/s"
            _say(f"{ceiling.workload} | ceiling | run {number}: {rate}")
            results.append(ceiling)
            for operation in _operations(study):
                for name, server in servers.items():
                    result = retrieve_once(
                        operation, name, server, study, number=number, where=where
                    )
                    status = result.error or f"{result.instances_per_second:,.0f} inst/s"
                    _say(f"{result.workload} | {name} | run {number}: {status}")
                    results.append(result)
                    if result.error is None:
                        key = f"{name} {operation}"
                        syntaxes[key] = received_transfer_syntax(where.folder(operation))
    return results, syntaxes


def _operations(study: LoadedStudy) -> list[Operation]:
    """Every operation; getscu at its defaults only on studies of up to DEFAULTS_MAX
    instances, as a receiver that waits a delayed ACK per instance takes minutes on more."""
    small_enough = len(study.files) <= DEFAULTS_MAX
    return [op for op in Operation if op is not Operation.GET_DEFAULTS or small_enough]


def _preamble(runs: int, rest: dict[str, float]) -> list[str]:
    at_rest = ", ".join(f"{name} {mb:,.0f} MB" for name, mb in rest.items())
    return [
        f"Retrieve with DCMTK movescu (C-MOVE to DCMTK storescp --fork on 127.0.0.1) and "
        f"getscu (C-GET), Study Root, one study per run; median of {runs} run(s), "
        f"{os.cpu_count()} cores; MB = 10^6 bytes of the Part 10 files as stored.",
        "Peak RSS: the server's peak during the retrieval (VmHWM reset before each run); "
        f"RSS at rest after loading: {at_rest}.",
        "ceiling: storescp fed by DCMTK storescu over one association in the same run, "
        "what the receiver itself can ingest (getscu receives with the same DCMTK code).",
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=list(SCALES), default="full")
    parser.add_argument("--targets", default="pacs,orthanc", help="from: " + ", ".join(QR_TARGETS))
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median reported)")
    parser.add_argument("--json", type=Path, help="write the full results here")
    parser.add_argument("--markdown", type=Path, help="write the table here (also printed)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per run")
    return parser


def _measure(
    args: argparse.Namespace, targets: Sequence[Any], work: Path
) -> tuple[list[RunResult], dict[str, Any]]:
    studies = make_studies(args.scale, work / "data")
    (work / "destination").mkdir()
    destination = start_storescp(work / "destination")
    servers: dict[str, Server] = {}
    try:
        peer = Destination(DESTINATION_AE_TITLE, destination.port)
        for target in targets:
            (work / target.name).mkdir()
            servers[target.name] = target.start(work / target.name, [peer])
        failed = _load_all(servers, studies, work / "logs", args.timeout)
        servers = {name: server for name, server in servers.items() if name not in failed}
        rest = {name: rss_mb(server.process.pid) for name, server in servers.items()}
        where = Retrieval(work / "destination" / "received", work / "got", work, args.timeout)
        results, syntaxes = run_all(servers, studies, args.runs, where, destination)
    finally:
        for server in [*servers.values(), destination]:
            shutdown(server)
    sizes = {s.label: {"count": len(s.files), "bytes": s.bytes} for s in studies}
    extra = {"rss_at_rest_mb": rest, "load_failures": failed, "received_transfer_syntax": syntaxes}
    return results, extra | {"datasets": sizes}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if missing := [tool for tool in TOOLS if dcmtk.find(tool) is None]:
        parser.error(f"DCMTK's {', '.join(missing)} not on PATH")
    try:
        targets, skipped = choose(args.targets)
    except ValueError as exc:
        parser.error(str(exc))
    for name, reason in skipped.items():
        _say(f"skipping {name}: {reason}")
    with tempfile.TemporaryDirectory(prefix="retrieve-") as tmp:
        try:
            results, extra = _measure(args, targets, Path(tmp))
        except ServerFailed as exc:
            _say(f"a server did not start: {exc}")
            return 1
    summaries = summarise(results)
    table = markdown(summaries, args.runs, skipped, _preamble(args.runs, extra["rss_at_rest_mb"]))
    table += "".join(f"\nLoad FAILED for {n}: {e}" for n, e in extra["load_failures"].items())
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        workdir = Path(tempfile.gettempdir())
        env = environment([t.name for t in targets], workdir)
        env["versions"] |= {
            tool: command_version([dcmtk.tool(tool), "--version"]) for tool in TOOLS
        }
        context = {"scale": args.scale, "runs_per_figure": args.runs, "environment": env}
        document = report_document(summaries, **context, **extra, skipped=skipped)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    ok = summaries and all(s.ok for s in summaries) and not extra["load_failures"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
