"""The `pacs` command line: serve, check the configuration, manage the database."""

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pacs.app import run, upgrade_database
from pacs.config import Settings, load_settings
from pacs.errors import PacsError

log = logging.getLogger("pacs")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pacs",
        description="pacs: a DICOM archive (Storage and Query/Retrieve SCP) on one asyncio loop.",
    )
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


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.logging.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _serve(settings: Settings) -> int:
    _configure_logging(settings)
    asyncio.run(run(settings))
    return 0


def _check(settings: Settings) -> int:
    print(settings)
    return 0


def _upgrade(settings: Settings) -> int:
    _configure_logging(settings)
    asyncio.run(upgrade_database(settings))
    print("index database is at the newest schema")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status is 0 on success, 2 for a bad configuration."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(_config_path(args.config))
        if args.command == "serve":
            return _serve(settings)
        if args.command == "db":
            return _upgrade(settings)
        return _check(settings)
    except PacsError as exc:
        print(f"pacs: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
