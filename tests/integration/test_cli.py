"""The `pacs` command line as an admin runs it: serve, stop on a signal, bad config, schema."""

import asyncio
import signal
import sqlite3
from pathlib import Path

import pacs
from tests.integration import scu
from tests.integration.conftest import PacsAddress, run_dcmtk, write_config
from tests.integration.serve_process import run_pacs, start_serve


async def test_serve_logs_its_address_answers_echo_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    served = await start_serve(write_config(tmp_path, storage={"min_free_bytes": 0}))
    await served.wait_listening()

    code, output = await run_dcmtk("echoscu", served.host, str(served.port))
    assert code == 0, output

    assert await served.stop(signal.SIGTERM) == 0
    assert any("pacs stopped" in line for line in served.log)
    assert not any("Traceback" in line for line in served.log)


async def test_sigint_stops_the_server_too(tmp_path: Path) -> None:
    served = await start_serve(write_config(tmp_path, storage={"min_free_bytes": 0}))
    await served.wait_listening()

    assert await served.stop(signal.SIGINT) == 0


async def test_a_running_association_gets_its_deadline_and_new_ones_are_refused(
    tmp_path: Path,
) -> None:
    served = await start_serve(write_config(tmp_path, storage={"min_free_bytes": 0}))
    await served.wait_listening()
    address = PacsAddress(served.host, served.port)
    held = await asyncio.to_thread(scu.associate, address)
    assert held.is_established

    served.process.send_signal(signal.SIGTERM)
    await served.wait_for_line("pacs stopping")
    async with asyncio.timeout(10):  # no new association: the port closes
        while not await _refused(served.host, served.port):
            await asyncio.sleep(0.02)
    assert int((await asyncio.to_thread(held.send_c_echo)).Status) == 0  # the open one still works
    await asyncio.to_thread(held.release)
    assert await served.stop(sig=None) == 0


async def _refused(host: str, port: int) -> bool:
    """Whether a TCP connection to the port is refused (the listener is closed)."""
    try:
        _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


async def test_an_invalid_config_names_the_key_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "pacs.toml"
    config.write_text('[server]\nport = "eleven"\n')

    code, output = await run_pacs("serve", "--config", str(config))

    assert code == 2
    assert "[server] port" in output
    assert "Traceback" not in output


async def test_db_upgrade_creates_the_schema_and_serve_refuses_a_newer_one(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    code, output = await run_pacs("db", "upgrade", "--config", str(config))
    assert code == 0, output
    database = tmp_path / "index.sqlite"
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"patient", "study", "series", "instance"} <= tables
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")

    code, output = await run_pacs("serve", "--config", str(config))

    assert code == 3  # valid configuration, unusable database
    assert "ffffffffffff" in output
    assert "newer" in output
    assert "Traceback" not in output


async def test_help_says_what_each_command_does() -> None:
    code, output = await run_pacs("--help")
    assert code == 0
    for command in ("serve", "config", "db"):
        assert command in output
    code, output = await run_pacs("serve", "--help")
    assert code == 0
    assert "SIGTERM" in output


async def test_version_prints_the_installed_version() -> None:
    code, output = await run_pacs("--version")

    assert code == 0
    assert output.strip() == f"pacs {pacs.__version__}"


async def test_config_check_masks_the_database_password(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://pacs:s3cret@db.example:5432/pacs"

    code, output = await run_pacs(
        "config", "check", "--config", str(write_config(tmp_path)), env={"PACS_DATABASE_URL": url}
    )

    assert code == 0, output
    assert "s3cret" not in output
    assert "postgresql+asyncpg://pacs:***@db.example:5432/pacs" in output


ALEMBIC_SETUP = ("Context impl", "Will assume")


async def test_alembic_set_up_lines_are_debug_and_upgrades_info(tmp_path: Path) -> None:
    config = write_config(tmp_path, storage={"min_free_bytes": 0})

    fresh = await start_serve(config)  # a fresh database: migrated at start
    await fresh.wait_listening()
    assert await fresh.stop() == 0
    again = await start_serve(config)  # nothing to migrate
    await again.wait_listening()
    assert await again.stop() == 0

    upgrades = [line for line in fresh.log if "Running upgrade" in line]
    assert upgrades
    assert all(" INFO alembic" in line for line in upgrades)
    for line in fresh.log + again.log:
        assert not any(setup in line for setup in ALEMBIC_SETUP), line
    assert not any("alembic" in line for line in again.log), again.log


async def test_alembic_set_up_lines_show_at_debug_level(tmp_path: Path) -> None:
    config = write_config(tmp_path, storage={"min_free_bytes": 0}, logging={"level": "DEBUG"})

    served = await start_serve(config)
    await served.wait_listening()
    assert await served.stop() == 0

    setup = [line for line in served.log if any(s in line for s in ALEMBIC_SETUP)]
    assert setup
    assert all(" DEBUG alembic" in line for line in setup)
