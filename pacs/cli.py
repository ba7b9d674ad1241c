"""The `pacs` command line: serve, check the configuration, manage the database."""

import argparse
import asyncio
import importlib.metadata
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pacs
from pacs.app import run, upgrade_database
from pacs.config import Settings, check_listen_host, load_settings
from pacs.errors import ConfigError, PacsError

log = logging.getLogger("pacs")

# Exit statuses; the README's Command line section lists them.
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
    return parser


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
        return _check(settings, path)
    except PacsError as exc:
        # One line for the admin; the traceback is for whoever runs at DEBUG.
        log.debug("pacs %s failed", args.command, exc_info=True)
        print(f"pacs: {exc}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
