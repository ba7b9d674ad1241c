"""`pacs export --deidentify PROFILE (--study UID | --patient ID [--issuer I]) DIR`: write
de-identified Part 10 files, with a progress bar."""

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from pacs.admin import ExportRequest, export_deidentified
from pacs.cli_progress import ProgressBar
from pacs.config import Settings

EXIT_REFUSED = 1  # some instances were left out (cli.EXIT_FINDINGS)


def add_export_parser(commands: Any, config_help: str) -> None:
    """The `export` subcommand's arguments."""
    export = commands.add_parser(
        "export",
        help="write de-identified Part 10 files of a study or a patient",
        description="Write the instances of a study, or of every study of a patient, as "
        "Part 10 files de-identified under a profile ('basic', or a [deidentify.NAME] table), "
        "into DIR/<study>/<series>/<instance>.dcm named by their new UIDs. The stored "
        "originals are not changed; the new identifiers are kept in the index. Instances "
        "whose pixels may show the patient's identity are left out; the exit status is then 1.",
    )
    export.add_argument("--config", type=Path, help=config_help)
    export.add_argument("--deidentify", required=True, metavar="PROFILE", help="the profile")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--study", metavar="UID", help="a Study Instance UID")
    which.add_argument("--patient", metavar="ID", help="a Patient ID: all of its studies")
    export.add_argument(
        "--issuer", default="", help="the Issuer of Patient ID of --patient (default: none)"
    )
    export.add_argument("directory", type=Path, metavar="DIR", help="where the files go")


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    """Run `pacs export`; print what was written and each instance left out, with why."""
    request = ExportRequest(
        args.deidentify, args.directory.absolute(), args.study, args.patient, args.issuer
    )
    with ProgressBar("inst", "exporting", leave=True) as bar:

        def progress(total: int | None, done: int) -> None:
            if total is not None:
                bar.start(total)
            else:
                bar.advance(done)

        report = asyncio.run(export_deidentified(settings, request, progress))
    for uid, reason in report.refused:
        print(f"left out {uid}: {reason}", file=sys.stderr)
    print(
        f"exported {report.written} instances ({report.bytes_written / 1e6:.1f} MB) to "
        f"{request.directory}, de-identified under profile {request.profile!r}"
        + (f"; {len(report.refused)} left out" if report.refused else "")
    )
    if report.written == 0 and not report.refused:
        print("pacs export: nothing in the index matches", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_REFUSED if report.refused else 0
