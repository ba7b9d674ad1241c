"""Scale benchmark: ingest into an empty index and a large one, and C-FIND at that size.

For each target (pacs on SQLite, pacs-pg on PostgreSQL) the index is filled with a
generated archive (benchmarks.scale_population; full: 1,000,000 instances of about
10,000 patients) written directly as rows (benchmarks.scale_rows, scale_load)
into a schema made by pacs's migrations, with the files of a sample of studies
in the store. Then, against a server on that index: the C-FIND mix
(benchmarks.scale_queries) p50/p95; the sample checked through C-FIND and C-GET;
and DCMTK storescu ingest (small instances, parallel associations) into a fresh
empty server and into the large one, alternating, the same files in both, a new
set of files each run. Every server runs with [query] max_results, the limit the
leading-wildcard search is cut at. Usage:
python -m benchmarks.scale [--scale tiny|small|full] [--targets pacs,pacs-pg] [--runs 3]
                           [--json OUT] [--markdown OUT]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import dcmtk, postgres, scale_load
from benchmarks.dataset import Kind, generate
from benchmarks.population import Study
from benchmarks.preload import store
from benchmarks.scale_population import scale_studies
from benchmarks.scale_queries import KEYED, check_sample, make_cases, run_mix, summarise
from benchmarks.scale_report import markdown
from benchmarks.scale_rows import PutFile, RowBuilder, batches
from benchmarks.servers import Server, shutdown
from benchmarks.targets import start_pacs
from pacs.store.blobstore import FileBlobStore

# (instances in the index, instances sent per ingest run, sample studies with files)
SCALES = {
    "tiny": (2_000, 100, 3),
    "small": (100_000, 1_000, 10),
    "full": (1_000_000, 1_000, 20),
}
TARGETS = ("pacs", "pacs-pg")
# Above the largest series (300 instances) and a month's studies, so keyed answers are
# whole; below the *SMI* search's matches at full scale (about 350 studies), so it is cut.
MAX_RESULTS = 300
ASSOCIATIONS = 4
SEED = 22
EXTRA = f"[query]\nmax_results = {MAX_RESULTS}\n"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Index:
    """A target's database: the SQLite file in its work directory, or a PostgreSQL database."""

    def __init__(self, target: str, workdir: Path) -> None:
        self.target, self.workdir = target, workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.database = postgres.create_database() if target == "pacs-pg" else None
        self.url = (
            postgres.database_url(self.database)
            if self.database
            else f"sqlite+aiosqlite:///{workdir / 'index.sqlite'}"
        )

    def start(self) -> Server:
        env = {**os.environ, "PACS_DATABASE_URL": self.url} if self.database else None
        return start_pacs(self.workdir, env=env, extra=EXTRA)

    def drop(self) -> None:
        if self.database:
            postgres.drop_database(self.database)


def _sample(studies: Sequence[Study], count: int) -> list[Study]:
    """`count` studies spread over the archive, of at most 300 instances each."""
    small = [s for s in studies if s.instances <= 300]
    step = max(1, len(small) // count)
    return small[::step][:count]


def fill(index: Index, studies: Sequence[Study], sample: Sequence[Study]) -> dict[str, Any]:
    """Migrate, write every study's rows and the sample's files; return how long it took."""
    started, cpu = time.perf_counter(), time.process_time()
    scale_load.migrate(index.url)
    wanted = {s.uid for s in sample}
    with ThreadPoolExecutor(1) as commits:
        blobs = FileBlobStore(index.workdir / "store", commits=commits, fsync=False)

        def put(data: bytes) -> tuple[str, int]:
            writer = blobs.begin()
            writer.write(data)
            ref = writer.commit()
            return ref.sha256, ref.size

        def files(study: Study) -> PutFile | None:
            return put if study.uid in wanted else None

        rows = batches(RowBuilder(), studies, files)
        if index.database:
            written = scale_load.load_postgres(index.url, rows)
        else:
            written = scale_load.load_sqlite(index.workdir / "index.sqlite", rows)
        blobs.close()
    seconds = time.perf_counter() - started
    _say(f"{index.target}: {written:,} instances' rows in {seconds:.0f} s")
    return {"instances": written, "seconds": seconds, "cpu_seconds": time.process_time() - cpu}


def _ingest_once(server: Server, files: list[Path], logdir: Path) -> float:
    """Send `files` over ASSOCIATIONS storescu; return instances/s (0.0 if any was lost)."""
    before = server.stored()
    inputs = [files[n::ASSOCIATIONS] for n in range(ASSOCIATIONS)]
    seconds, codes = store(server, inputs, logdir, timeout=1800.0)
    held = server.stored() - before
    if any(codes) or held != len(files):
        _say(f"ingest failed: exit codes {codes}, {held} of {len(files)} stored")
        return 0.0
    return len(files) / seconds


def ingest_runs(index: Index, sets: list[list[Path]], tmp: Path) -> dict[str, list[float]]:
    """Each set into a fresh empty server and into the full one; the order alternates."""
    rates: dict[str, list[float]] = {"empty": [], "full": []}
    for number, files in enumerate(sets):
        order = ("empty", "full") if number % 2 == 0 else ("full", "empty")
        for which in order:
            fresh = Index(index.target, tmp / f"empty-{index.target}-{number}")
            chosen = fresh if which == "empty" else index
            server = chosen.start()
            try:
                rate = _ingest_once(server, files, tmp / f"logs-{which}-{number}")
            finally:
                shutdown(server)
                if chosen is fresh:
                    fresh.drop()
            _say(f"{index.target} ingest into {which} index, run {number + 1}: {rate:,.0f} inst/s")
            rates[which].append(rate)
    return rates


def run_target(
    target: str,
    studies: Sequence[Study],
    sets: list[list[Path]],
    args: argparse.Namespace,
    tmp: Path,
) -> dict[str, Any]:
    sample = _sample(studies, SCALES[args.scale][2])
    index = Index(target, tmp / f"full-{target}")
    try:
        result: dict[str, Any] = {"fill": fill(index, studies, sample)}
        server = index.start()
        try:
            cases = make_cases(studies, args.repeats, SEED)
            observations = run_mix(server, cases, MAX_RESULTS)
            result["queries"] = [asdict(q) for q in summarise(observations)]
            problems = check_sample(server, sample, tmp / f"sample-{target}")
            result["sample"] = {
                "studies": len(sample),
                "instances": sum(s.instances for s in sample),
                "problems": problems[:10],
            }
        finally:
            shutdown(server)
        result["ingest"] = ingest_runs(index, sets, tmp)
    finally:
        index.drop()
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=list(SCALES), default="small")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="ingest runs (each: empty and full)")
    parser.add_argument("--repeats", type=int, default=40, help="queries of each kind")
    parser.add_argument("--json", type=Path, help="write the full results here")
    parser.add_argument("--markdown", type=Path, help="write the tables here (also printed)")
    return parser


def _targets(parser: argparse.ArgumentParser, text: str) -> tuple[list[str], dict[str, str]]:
    chosen, skipped = [], {}
    for name in filter(None, (part.strip() for part in text.split(","))):
        if name not in TARGETS:
            parser.error(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
        reason = postgres.unavailable() if name == "pacs-pg" else None
        if reason:
            skipped[name] = reason
        else:
            chosen.append(name)
    return chosen, skipped


def _write(args: argparse.Namespace, document: dict[str, Any]) -> str:
    """The tables of what has run so far, written where asked (after each target)."""
    table = markdown(document, KEYED)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if dcmtk.find("storescu") is None or dcmtk.find("getscu") is None:
        parser.error("DCMTK's storescu and getscu must be on PATH")
    targets, skipped = _targets(parser, args.targets)
    for name, reason in skipped.items():
        _say(f"skipping {name}: {reason}")
    size, sent, _ = SCALES[args.scale]
    studies = list(scale_studies(SEED, size))
    population = {
        "patients": len({s.patient.patient_id for s in studies}),
        "studies": len(studies),
        "series": sum(len(s.series) for s in studies),
        "instances": size,
    }
    context = {"scale": args.scale, "max_results": MAX_RESULTS, "associations": ASSOCIATIONS}
    context |= {"ingest_instances": sent, "runs": args.runs, "repeats": args.repeats}
    document: dict[str, Any] = {"population": population, "context": context}
    document["skipped"] = skipped
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="scale-") as name:
        tmp = Path(name)
        sets = [
            generate(tmp / f"ingest-{n}", Kind.SMALL, sent, studies=-(-sent // 50), seed=100 + n)
            for n in range(args.runs)
        ]
        for target in targets:
            results[target] = run_target(target, studies, sets, args, tmp)
            table = _write(args, document | results)
    print(table if targets else _write(args, document))
    failed = any(
        r["sample"]["problems"]
        or not all(r["ingest"]["empty"] + r["ingest"]["full"])
        or any(q["problems"] for q in r["queries"])
        for r in results.values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
