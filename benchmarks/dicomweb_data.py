"""The files the DICOMweb benchmark loads, written once per run and sent to every target.

CT series of 512x512 16-bit slices (benchmarks.dataset), one study each; a JPEG 2000
Lossless series (the same slices, compressed), for encapsulated frames; and the query
population (benchmarks.population, ten instances per study), grown by appending studies.
"""

from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.uid import JPEG2000Lossless

from benchmarks.dataset import Kind, generate
from benchmarks.population import Study, studies
from benchmarks.population_files import write_studies

INSTANCES_PER_STUDY = 10
POPULATION_SEED = 41
FOLDERS = 4  # parallel storescu associations when loading a population
# The `*x*` name search's x: part of several of the population's surnames (JOHNSON...).
NAME_FRAGMENT = "SON"


@dataclass(frozen=True, slots=True)
class SeriesFiles:
    """One series in one study: its files and the UIDs a DICOMweb path needs."""

    files: list[Path]
    study: str
    series: str
    instances: list[str]  # SOP Instance UIDs, in file order

    @property
    def path(self) -> str:
        return f"/studies/{self.study}/series/{self.series}"

    @property
    def size(self) -> int:
        return sum(path.stat().st_size for path in self.files)


def _describe(files: list[Path]) -> SeriesFiles:
    headers = [pydicom.dcmread(path, stop_before_pixels=True) for path in files]
    first = headers[0]
    uids = [str(ds.SOPInstanceUID) for ds in headers]
    return SeriesFiles(files, str(first.StudyInstanceUID), str(first.SeriesInstanceUID), uids)


def ct_series(out: Path, count: int, seed: int) -> SeriesFiles:
    """`count` CT slices in one series of one study; `seed` makes its UIDs its own."""
    return _describe(generate(out, Kind.CT, count, studies=1, patients=1, seed=seed))


def jpeg2000_series(out: Path, count: int, seed: int) -> SeriesFiles:
    """`count` CT slices compressed to JPEG 2000 Lossless, in one series of one study."""
    files = generate(out, Kind.CT, count, studies=1, patients=1, seed=seed)
    for path in files:
        ds = pydicom.dcmread(path)
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
        ds.save_as(path, enforce_file_format=True)
    return _describe(files)


def population(instances: int) -> list[Study]:
    """The query population's studies when it holds `instances` instances."""
    return list(studies(POPULATION_SEED, instances // INSTANCES_PER_STUDY, INSTANCES_PER_STUDY))


def population_folders(out: Path, instances_from: int, instances_to: int) -> list[Path]:
    """Folders holding the query population's instances from `instances_from` up to
    `instances_to` (the studies appended when it grows), dealt over FOLDERS folders."""
    grown = population(instances_to)[instances_from // INSTANCES_PER_STUDY :]
    written = write_studies(grown, out, FOLDERS)
    return [Path(directory) for directory in written.directories]
