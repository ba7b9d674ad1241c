"""The `pacs` command line: serve, check the configuration, manage the database, verify."""

import argparse
import asyncio
import importlib.metadata
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Never, Self

from tqdm import tqdm

import pacs
from pacs.admin import verify_archive
from pacs.app import run, upgrade_database
from pacs.archive.verify import VerifyReport
from pacs.cli_rebuild import add_commands, run_import, run_reindex
from pacs.config import Settings, check_listen_host, load_settings
from pacs.errors import ConfigError, PacsError

log = logging.getLogger("pacs")

# Exit statuses; the README's Command line section lists them.
EXIT_FINDINGS = 1  # `pacs verify` found something wrong; reindex or import left some out
EXIT_CONFIG = 2  # the configuration file or PACS_DATABASE_URL is invalid
EXIT_CANNOT_RUN = 3  # something the configuration names cannot be used (port, directory, database)
EXIT_INTERRUPTED = 130


def _version() -> str:
    try:
        return importlib.metadata.version("pacs")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return pacs.__version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pacs",
        description="pacs: a DICOM archive (Storage and Query/Retrieve SCP) on one asyncio loop.",
    )
    parser.add_argument("--version", action="version", version=f"pacs {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = "the TOML configuration file (default: $PACS_CONFIG, else built-in defaults)"

    serve = commands.add_parser(
        "serve",
        help="run the archive until SIGINT or SIGTERM",
        description="Run the DICOM archive: listen for associations until SIGINT or SIGTERM, "
        "then refuse new ones, let running ones finish, and exit.",
    )
    serve.add_argument("--config", type=Path, help=config_help)

    check = commands.add_parser(
        "config",
        help="configuration tools",
        description="Configuration tools.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    check_parser = check.add_parser(
        "check",
        help="validate a configuration file and print the settings",
        description="Validate the configuration file and print the effective settings.",
    )
    check_parser.add_argument("--config", type=Path, help=config_help)

    db = commands.add_parser(
        "db", help="index database tools", description="Index database tools."
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = db.add_parser(
        "upgrade",
        help="migrate the index database to the newest schema",
        description="Run the Alembic migrations of the index database up to the newest "
        "revision (`serve` does this by itself on start).",
    )
    upgrade.add_argument("--config", type=Path, help=config_help)

    verify = commands.add_parser(
        "verify",
        help="check the index and the store against each other, re-hashing blobs",
        description="Re-hash every stored blob (or a random sample) and check the index and "
        "the store both ways: indexed instances whose blob is missing or no longer hashes to "
        "its address, blobs that no instance references, staging files left behind. Exits "
        "with 0 when nothing is wrong, 1 when anything is. Safe while `serve` runs.",
    )
    verify.add_argument("--config", type=Path, help=config_help)
    verify.add_argument(
        "--sample",
        type=_percent,
        default=100.0,
        metavar="PERCENT",
        help="re-hash each blob with this probability, in percent (default: 100, every one)",
    )
    verify.add_argument(
        "--json", action="store_true", help="print the report as JSON instead of the summary"
    )
    add_commands(commands)  # reindex, import
    return parser


def _percent(value: str) -> float:
    try:
        percent = float(value)
    except ValueError:
        percent = -1.0
    if not 0 <= percent <= 100:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 100, got {value!r}")
    return percent


def _config_path(arg: Path | None) -> Path | None:
    if arg is not None:
        return arg
    env = os.environ.get("PACS_CONFIG")
    return Path(env) if env else None


class _AlembicSetupAtDebug(logging.Filter):
    """Alembic announces its dialect at INFO whenever pacs looks at the schema, which is on
    every start; those lines go to DEBUG. Its "Running upgrade" lines stay at INFO."""

    _SETUP = ("Context impl ", "Will assume ")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.getMessage().startswith(self._SETUP):
            if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                return False
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.logging.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic.runtime.migration").addFilter(_AlembicSetupAtDebug())


def _serve(settings: Settings, path: Path | None) -> int:
    check_listen_host(settings, path)
    _configure_logging(settings)
    for warning in settings.warnings:
        logging.getLogger(__name__).warning("%s: %s", path, warning)
    asyncio.run(run(settings, path))
    return 0


def _check(settings: Settings, path: Path | None) -> int:
    check_listen_host(settings, path)
    print(settings)
    return 0


def _upgrade(settings: Settings) -> int:
    _configure_logging(settings)
    asyncio.run(upgrade_database(settings))
    print("index database is at the newest schema")
    return 0


class _ProgressBar:
    """The bytes re-hashed so far as a tqdm bar on stderr; tqdm draws none when stderr is
    not a terminal, so logs and pipes stay clean."""

    def __init__(self) -> None:
        self._bar: tqdm[Never] | None = None

    def start(self, total_bytes: int) -> None:
        self._bar = tqdm(
            total=total_bytes,
            unit="B",
            unit_scale=True,
            desc="re-hashing",
            file=sys.stderr,
            disable=None,
            leave=False,
        )

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.update(nbytes)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()


def summary(report: VerifyReport) -> Iterator[str]:
    """The lines `pacs verify` prints: counts, rate, findings by kind, then each finding."""
    yield (
        f"{report.instances_indexed} instances indexed, {report.blobs_stored} blobs stored, "
        f"{report.blobs_rehashed} re-hashed ({report.bytes_rehashed / 1e6:.1f} MB, "
        f"sample {report.sample_percent:g}%) in {report.seconds:.2f} s: "
        f"{report.mb_per_s:.1f} MB/s"
    )
    yield (
        f"stores under way: {report.staging_in_progress} staging files, "
        f"{report.blobs_being_indexed} blobs not yet indexed"
    )
    for kind, count in report.counts_by_kind().items():
        yield f"{kind}: {count}"
    for finding in report.findings:
        uid = finding.sop_instance_uid or "-"
        yield f"{finding.kind} {finding.address} {uid}: {finding.detail}"
    problems = len(report.findings)
    yield f"{problems or 'no'} problem{'' if problems == 1 else 's'} found"


def _verify(settings: Settings, sample_percent: float, as_json: bool) -> int:
    _configure_logging(settings)
    with _ProgressBar() as bar:
        report = asyncio.run(verify_archive(settings, sample_percent=sample_percent, progress=bar))
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print("\n".join(summary(report)))
    return 0 if report.ok else EXIT_FINDINGS


def _rebuild_or_check(settings: Settings, path: Path | None, args: argparse.Namespace) -> int:
    if args.command in ("reindex", "import"):
        _configure_logging(settings)
        run_rebuild = run_reindex if args.command == "reindex" else run_import
        return 0 if run_rebuild(settings, args) else EXIT_FINDINGS
    return _check(settings, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status is 0 on success, else one of EXIT_*."""
    args = _parser().parse_args(argv)
    path = _config_path(args.config)
    try:
        settings = load_settings(path)
        if args.command == "serve":
            return _serve(settings, path)
        if args.command == "db":
            return _upgrade(settings)
        if args.command == "verify":
            return _verify(settings, args.sample, args.json)
        return _rebuild_or_check(settings, path, args)
    except PacsError as exc:
        # One line for the admin; the traceback is for whoever runs at DEBUG.
        log.debug("pacs %s failed", args.command, exc_info=True)
        print(f"pacs: {exc}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
