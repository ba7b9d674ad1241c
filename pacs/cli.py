"""The `pacs` command line: serve, configuration and database tools, and the admin commands."""

import argparse
import asyncio
import importlib.metadata
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pacs
from pacs.admin import collect_garbage, delete_from_index, verify_archive
from pacs.app import run, upgrade_database
from pacs.archive.gc import GcReport
from pacs.archive.verify import VerifyReport
from pacs.cli_export import add_export_parser, run_export
from pacs.cli_progress import ProgressBar
from pacs.cli_rebuild import add_commands, run_import, run_reindex
from pacs.config import Settings, check_listen_host, load_settings
from pacs.errors import ConfigError, PacsError
from pacs.index.deletion import DeletionPlan, Level, Selection
from pacs.log_format import log_handler
from pacs.supervisor import WorkerSpec, run_worker, supervise

log = logging.getLogger("pacs")

# Exit statuses; the README's Command line section lists them.
# 1: `pacs verify` found something wrong; `pacs delete` found nothing to delete;
# `pacs reindex` or `pacs import` left some files out
EXIT_FINDINGS = 1
EXIT_CONFIG = 2  # the configuration file or PACS_DATABASE_URL is invalid
EXIT_CANNOT_RUN = 3  # something the configuration names cannot be used (port, directory, database)
EXIT_NOT_CONFIRMED = 4  # `pacs delete` was not confirmed
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
    # Set by the supervisor on the workers it starts ([server] workers > 1).
    serve.add_argument("--worker", help=argparse.SUPPRESS)

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
    _add_gc_and_delete(commands, config_help)
    add_commands(commands)  # reindex, import
    add_export_parser(commands, config_help)
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


def _configure_logging(settings: Settings, worker: int | None = None) -> None:
    logging.basicConfig(
        level=settings.logging.level, handlers=[log_handler(settings.logging.format, worker)]
    )
    logging.getLogger("alembic.runtime.migration").addFilter(_AlembicSetupAtDebug())


def _serve(settings: Settings, path: Path | None, worker: str | None) -> int:
    check_listen_host(settings, path)
    if worker is not None:
        spec = WorkerSpec.parse(worker)
        _configure_logging(settings, spec.number)
        run_worker(settings, path, spec)
        return 0
    _configure_logging(settings)
    for warning in settings.warnings:
        logging.getLogger(__name__).warning("%s: %s", path, warning)
    if settings.server.workers > 1:
        return supervise(settings, path)
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
    with ProgressBar("B", "re-hashing") as bar:
        report = asyncio.run(verify_archive(settings, sample_percent=sample_percent, progress=bar))
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print("\n".join(summary(report)))
    return 0 if report.ok else EXIT_FINDINGS


# --- pacs gc, pacs delete ---------------------------------------------------------------


def _add_gc_and_delete(commands: Any, config_help: str) -> None:
    gc = commands.add_parser(
        "gc",
        help="remove blobs no instance references and staging files left by crashes",
        description="Remove stored blobs that no instance references (replaced duplicates, "
        "failed or deleted instances) once they are an hour old, and staging files not "
        "written for 10 minutes. Safe while `serve` runs.",
    )
    gc.add_argument("--config", type=Path, help=config_help)
    gc.add_argument("--dry-run", action="store_true", help="remove nothing; count what would go")
    gc.add_argument(
        "--json", action="store_true", help="print the report as JSON instead of the summary"
    )
    delete = commands.add_parser(
        "delete",
        help="remove a patient, study, series or instance from the index",
        description="Remove what one option names from the index (their files go at the next "
        "`pacs gc`), after confirmation on a terminal or with --yes. Safe while `serve` runs.",
    )
    delete.add_argument("--config", type=Path, help=config_help)
    which = delete.add_mutually_exclusive_group(required=True)
    which.add_argument("--patient", metavar="ID", help="a patient, by Patient ID")
    which.add_argument("--study", metavar="UID", help="a study, by Study Instance UID")
    which.add_argument("--series", metavar="UID", help="a series, by Series Instance UID")
    which.add_argument("--instance", metavar="UID", help="an instance, by SOP Instance UID")
    delete.add_argument(
        "--issuer", default="", help="with --patient: its Issuer of Patient ID (default: none)"
    )
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def gc_summary(report: GcReport) -> Iterator[str]:
    """The lines `pacs gc` prints."""
    verb = "would remove" if report.dry_run else "removed"
    yield (
        f"{report.instances_indexed} instances indexed, {report.blobs_stored} blobs stored, "
        f"{report.unreferenced} unreferenced, in {report.seconds:.2f} s"
    )
    if report.dry_run:
        yield f"would remove {report.blobs_removed} blobs"
    else:
        yield f"removed {report.blobs_removed} blobs ({report.bytes_removed / 1e6:.1f} MB)"
    yield (
        f"kept {report.kept_young} written within the last hour, "
        f"{report.kept_referenced} referenced meanwhile"
    )
    yield (
        f"{verb} {report.staging_removed} staging files "
        f"({report.staging_bytes_removed / 1e6:.1f} MB); {report.staging_in_progress} in use"
    )
    if report.leftovers_put_back:
        yield f"put back {report.leftovers_put_back} blobs an interrupted gc had taken away"


def _gc(settings: Settings, dry_run: bool, as_json: bool) -> int:
    _configure_logging(settings)
    with ProgressBar("dir", "scanning") as bar:
        report = asyncio.run(collect_garbage(settings, dry_run=dry_run, progress=bar))
    if dry_run:
        log.info(
            "gc --dry-run: %d blobs and %d staging files would go",
            report.blobs_removed,
            report.staging_removed,
        )
    else:
        log.info(
            "gc: removed %d blobs (%d bytes) and %d staging files (%d bytes)",
            report.blobs_removed,
            report.bytes_removed,
            report.staging_removed,
            report.staging_bytes_removed,
        )
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print("\n".join(gc_summary(report)))
    return 0


def _selection(args: argparse.Namespace) -> Selection:
    for level in Level:
        if (key := getattr(args, level.value)) is not None:
            return Selection(level, key, args.issuer if level is Level.PATIENT else "")
    raise AssertionError("argparse requires one of the levels")


_PLURALS = {"patient": "patients", "study": "studies", "series": "series", "instance": "instances"}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else _PLURALS[noun]}"


def describe(plan: DeletionPlan) -> str:
    """What a deletion plan removes, in counts (no patient data)."""
    whole = sum(study.whole for study in plan.studies)
    return (
        f"{_plural(len(plan.instance_uids), 'instance')} in {_plural(plan.series, 'series')} "
        f"of {_plural(len(plan.studies), 'study')} ({whole} whole) "
        f"of {_plural(plan.patients, 'patient')}"
    )


def _ask(plan: DeletionPlan) -> bool:
    if not sys.stdin.isatty():
        print("pacs delete: not confirmed (no terminal to ask on; pass --yes)", file=sys.stderr)
        return False
    print(f"about to delete from the index: {describe(plan)}", file=sys.stderr)
    answer = input("delete them? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _delete(settings: Settings, args: argparse.Namespace) -> int:
    _configure_logging(settings)
    confirm = (lambda _plan: True) if args.yes else _ask
    outcome = asyncio.run(delete_from_index(settings, _selection(args), confirm))
    if outcome.plan.empty:
        print("pacs delete: nothing in the index matches", file=sys.stderr)
        return EXIT_FINDINGS
    if outcome.removed is None:
        print("nothing deleted", file=sys.stderr)
        return EXIT_NOT_CONFIRMED
    removed = outcome.removed
    print(
        f"deleted from the index: {_plural(removed.patients, 'patient')}, "
        f"{_plural(removed.studies, 'study')}, {_plural(removed.series, 'series')}, "
        f"{_plural(removed.instances, 'instance')}; their files go at the next pacs gc"
    )
    return 0


def _export(settings: Settings, args: argparse.Namespace) -> int:
    _configure_logging(settings)
    return run_export(settings, args)


# Admin commands by name: each runs with the loaded settings and its parsed arguments.
ADMIN_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "verify": lambda settings, args: _verify(settings, args.sample, args.json),
    "gc": lambda settings, args: _gc(settings, args.dry_run, args.json),
    "delete": _delete,
    "reindex": lambda settings, args: _rebuild(run_reindex, settings, args),
    "import": lambda settings, args: _rebuild(run_import, settings, args),
    "export": _export,
}


def _rebuild(
    command: Callable[[Settings, argparse.Namespace], bool],
    settings: Settings,
    args: argparse.Namespace,
) -> int:
    _configure_logging(settings)
    return 0 if command(settings, args) else EXIT_FINDINGS


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status is 0 on success, else one of EXIT_*."""
    args = _parser().parse_args(argv)
    path = _config_path(args.config)
    try:
        settings = load_settings(path)
        if args.command == "serve":
            return _serve(settings, path, args.worker)
        if args.command == "db":
            return _upgrade(settings)
        if (admin := ADMIN_COMMANDS.get(args.command)) is not None:
            return admin(settings, args)
        return _check(settings, path)
    except PacsError as exc:
        # One line for the admin; the traceback is for whoever runs at DEBUG.
        log.debug("pacs %s failed", args.command, exc_info=True)
        print(f"pacs: {exc}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
