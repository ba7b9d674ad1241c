"""The `pacs reindex` and `pacs import` subcommands: their arguments, progress bar and summary."""

import argparse
import asyncio
from collections.abc import Iterator
from pathlib import Path

from pacs.admin_rebuild import import_paths, reindex_archive
from pacs.archive.file_import import Fate, ImportReport
from pacs.archive.reindex import ReindexReport
from pacs.cli_progress import ProgressBar
from pacs.config import DATABASE_DRIVERS, Settings, mask_password
from pacs.index.records import DuplicatePolicy


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `reindex` and `import` to the command line's subcommands."""
    config_help = "the TOML configuration file (default: $PACS_CONFIG, else built-in defaults)"
    reindex = commands.add_parser(
        "reindex",
        help="rebuild the index from the store's files",
        description="Read every blob in the store and index it into an empty database: the "
        "configured one (created when missing), or a new one given by --into, e.g. beside a "
        "damaged index. A SOP Instance stored in several blobs is indexed as the duplicate "
        "policy left it (the newest file under 'replace', else the oldest). Exits with 1 when "
        "a blob cannot be read.",
    )
    reindex.add_argument("--config", type=Path, help=config_help)
    reindex.add_argument(
        "--into",
        type=_database_url,
        metavar="URL",
        help="write the index to this database instead of the configured one",
    )
    reindex.add_argument(
        "--workers",
        type=_count,
        metavar="N",
        help="processes parsing headers; 0 parses in the command's own thread "
        "(default: one per core but one)",
    )
    imports = commands.add_parser(
        "import",
        help="store DICOM files and folders from disk, as C-STORE would",
        description="Store the Part 10 files under each PATH (folders recursively, a "
        "DICOMDIR's listed files) through the same checks and duplicate policy as C-STORE. "
        "Files that are not DICOM are counted and skipped; files already stored are skipped, "
        "so an interrupted import can simply be run again. Safe while `serve` runs. Exits "
        "with 1 when a file was refused.",
    )
    imports.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    imports.add_argument("--config", type=Path, help=config_help)


def _database_url(value: str) -> str:
    if not value.startswith(DATABASE_DRIVERS):
        drivers = " or ".join(DATABASE_DRIVERS)
        raise argparse.ArgumentTypeError(f"must start with {drivers}")
    return value


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number from 0, got {value!r}")
    return int(value)


def reindex_summary(report: ReindexReport, policy: DuplicatePolicy) -> Iterator[str]:
    """The lines `pacs reindex` prints: counts and rate, then each thing left out."""
    yield (
        f"{report.blobs} blobs read, {report.indexed} instances indexed in "
        f"{report.seconds:.2f} s: {report.rate:.0f} blobs/s"
    )
    newest = policy is DuplicatePolicy.REPLACE
    yield (
        f"duplicates: {len(report.duplicates)} (the {'newest' if newest else 'oldest'} "
        f"file of each is indexed, duplicate_policy = {policy})"
    )
    for dup in report.duplicates:
        yield f"duplicate {dup.sop_instance_uid}: indexed {dup.kept}, not {dup.dropped}"
    if report.patient_conflicts:
        conflicts = report.patient_conflicts
        yield f"instances whose patient attributes differ from their study's: {conflicts}"
    yield f"unreadable blobs: {len(report.unreadable)}"
    for blob in report.unreadable:
        yield f"unreadable {blob.address}: {blob.reason}"
    if report.refused:
        yield f"refused by the database: {len(report.refused)}"
        for uid, reason in report.refused:
            yield f"refused {uid}: {reason}"


def import_summary(report: ImportReport) -> Iterator[str]:
    """The lines `pacs import` prints: what became of the files, then each refusal."""
    counts = ", ".join(f"{count} {fate}" for fate, count in report.counts.items())
    yield (
        f"{report.files} files ({report.dicomdirs} DICOMDIRs read): {counts}; "
        f"{report.seconds:.2f} s, {report.rate:.0f} stored/s"
    )
    for path, reason in report.refused:
        yield f"refused {path}: {reason}"


def run_reindex(settings: Settings, args: argparse.Namespace) -> bool:
    """Run `pacs reindex`; True when every blob was indexed."""
    with ProgressBar(" blobs") as bar:
        report = asyncio.run(
            reindex_archive(settings, args.into, workers=args.workers, progress=bar)
        )
    target = mask_password(args.into or settings.database.url)
    print(f"index rebuilt in {target}")
    print("\n".join(reindex_summary(report, settings.storage.duplicate_policy)))
    return report.complete


def run_import(settings: Settings, args: argparse.Namespace) -> bool:
    """Run `pacs import`; True when no file was refused."""
    with ProgressBar(" files") as bar:
        report = asyncio.run(import_paths(settings, args.paths, progress=bar))
    print("\n".join(import_summary(report)))
    return report.counts[Fate.REFUSED] == 0
