"""DICOMweb figures side by side: pacs and Orthanc 1.10 with its DICOMweb plugin, one run.

For each target, started empty: CT series of `small` and `large` instances (full: 200
and 2,000, the latter about 1 GB) and a JPEG 2000 series arrive over C-STORE; then
series metadata p95 for both series; one frame p95, native and encapsulated; WADO-RS of
the large series (MB/s, the server's peak RSS); STOW-RS instances/s; C-STORE ingest
alone and while six viewer connections load the small study over and over; and QIDO
study searches (OHIF's, with a `*x*` name and limit=101) at two population sizes.
Usage:
python -m benchmarks.dicomweb_compare [--scale tiny|small|full] [--targets pacs,orthanc]
                              [--json OUT] [--markdown OUT]
"""

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import dicomweb_figures as figures
from benchmarks.dicomweb_data import (
    SeriesFiles,
    ct_series,
    jpeg2000_series,
    population,
    population_folders,
)
from benchmarks.dicomweb_http import Client
from benchmarks.dicomweb_report import markdown
from benchmarks.dicomweb_targets import WEB_TARGETS, WebTarget
from benchmarks.preload import store
from benchmarks.servers import shutdown


@dataclass(frozen=True, slots=True)
class Scale:
    small: int  # instances in the small CT series (the one viewers load)
    large: int  # instances in the large CT series (metadata, WADO-RS of a whole series)
    jpeg2000: int
    stow: int
    ingest: int  # instances per C-STORE run, alone and under viewers
    populations: tuple[int, int]  # QIDO population sizes, in instances
    repeats: int


SCALES = {
    "tiny": Scale(8, 16, 3, 20, 20, (200, 400), 5),
    "small": Scale(200, 2_000, 20, 200, 200, (10_000, 20_000), 30),
    "full": Scale(200, 2_000, 20, 500, 500, (10_000, 100_000), 50),
}
LOAD_TIMEOUT = 3_600.0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Files:
    small: SeriesFiles
    large: SeriesFiles
    jpeg2000: SeriesFiles
    stow: SeriesFiles
    ingest: tuple[SeriesFiles, SeriesFiles]


def write_files(root: Path, scale: Scale) -> Files:
    return Files(
        ct_series(root / "small", scale.small, seed=31),
        ct_series(root / "large", scale.large, seed=32),
        jpeg2000_series(root / "jpeg2000", scale.jpeg2000, seed=33),
        ct_series(root / "stow", scale.stow, seed=34),
        (
            ct_series(root / "ingest-alone", scale.ingest, seed=35),
            ct_series(root / "ingest-viewed", scale.ingest, seed=36),
        ),
    )


def _load(target: WebTarget, groups: Sequence[Sequence[Path]], logdir: Path) -> float:
    seconds, codes = store(target.server, groups, logdir, LOAD_TIMEOUT)
    if any(codes):
        raise RuntimeError(f"{target.name}: storescu exit codes {codes}, logs in {logdir}")
    return seconds


def _population_files(out: Path, instances_from: int, instances_to: int) -> list[Path]:
    """The population's files from one size to the next, written by the first target."""
    if not out.is_dir():
        population_folders(out, instances_from, instances_to)
    return sorted(out.iterdir())


def measure(target: WebTarget, files: Files, scale: Scale, work: Path) -> dict[str, Any]:
    """Every figure for one running target."""
    client = Client(target.base_url)
    _load(target, [files.small.files, files.large.files], work / "load")
    # STOW-RS, since storescu proposes uncompressed transfer syntaxes only.
    client.stow([path.read_bytes() for path in files.jpeg2000.files])
    result: dict[str, Any] = {
        "metadata": {
            str(scale.small): figures.metadata(client, files.small, scale.repeats),
            str(scale.large): figures.metadata(client, files.large, scale.repeats),
        },
        "frame": {
            "native": figures.frame(client, files.small, scale.repeats),
            "jpeg2000": figures.frame(client, files.jpeg2000, scale.repeats),
        },
    }
    _say(f"{target.name}: metadata and frames done")
    result["retrieve"] = figures.series_retrieve(client, target.server, files.large)
    result["stow"] = figures.stow(client, files.stow)
    result["ingest"] = figures.ingest_under_viewer(
        client, target.server, files.ingest, files.small, work / "ingest"
    )
    _say(f"{target.name}: retrieve, STOW-RS and ingest done")
    result["qido"], result["wrong_answers"] = {}, []
    held = 0
    for size in scale.populations:
        folders = _population_files(work.parent / "files" / f"population-{size}", held, size)
        seconds = _load(target, [[folder] for folder in folders], work / f"qido-{size}")
        _say(f"{target.name}: population of {size} instances loaded in {seconds:.0f} s")
        held = size
        searched, wrong = figures.qido(client, population(size), scale.repeats)
        result["qido"][str(size)] = searched
        result["wrong_answers"] += [f"{size:,} instances, {answer}" for answer in wrong]
    client.close()
    return result


def run(names: Sequence[str], scale: Scale, work: Path) -> dict[str, Any]:
    report: dict[str, Any] = {"scale": asdict(scale)}
    files = write_files(work / "files", scale)
    report["large_series_mb"] = files.large.size / 1e6
    report["targets"], report["skipped"] = {}, {}
    for name in names:
        missing, start = WEB_TARGETS[name]
        reason = missing()
        if reason is not None:
            report["skipped"][name] = reason
            continue
        directory = work / name
        directory.mkdir()
        target = start(directory)
        try:
            report["targets"][name] = measure(target, files, scale, directory)
        finally:
            shutdown(target.server)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--targets", default="pacs,orthanc")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    names = [name for name in args.targets.split(",") if name]
    unknown = [name for name in names if name not in WEB_TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {sorted(WEB_TARGETS)}")
    scale = SCALES[args.scale]
    with tempfile.TemporaryDirectory(prefix="pacs-dicomweb-") as work:
        report = run(names, scale, Path(work))
    report["scale_name"], report["cores"] = args.scale, os.cpu_count()
    table = markdown(
        report, " ".join(["python -m benchmarks.dicomweb_compare", *(argv or sys.argv[1:])])
    )
    print(table)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.markdown:
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
