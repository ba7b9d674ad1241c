"""SIGHUP reloads peers and [access] in a running `pacs serve`; a bad file changes nothing."""

import asyncio
import signal
from pathlib import Path

from pacs.net.contexts import VERIFICATION
from tests.integration import scu
from tests.integration.conftest import PacsAddress, rejection, write_config
from tests.integration.serve_process import ServeProcess, start_serve

SUCCESS, ACCEPTED, USER_REJECTION = 0x0000, 0x00, 0x01
NOT_RECOGNIZED = (0x01, 0x01, 0x03)
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


async def _reload(served: ServeProcess, outcome: str) -> str:
    """Send SIGHUP and wait for the line that says how the reload went."""
    start = len(served.log)
    served.process.send_signal(signal.SIGHUP)
    return await served.wait_for_line(outcome, start)


async def test_sighup_applies_new_permissions_to_new_associations_only(
    tmp_path: Path, database_url: str
) -> None:
    sections = {"database": {"url": database_url}, "storage": {"min_free_bytes": 0}}
    config = write_config(tmp_path, access={"unknown_peers": ["echo"]}, **sections)
    served = await start_serve(config)
    try:
        await served.wait_listening()
        pacs = PacsAddress(served.host, served.port)
        before = await asyncio.to_thread(
            scu.context_results, pacs, "STRANGER", [STUDY_FIND, VERIFICATION]
        )
        running = await asyncio.to_thread(scu.associate, pacs, ae_title="STRANGER")
        peer = {"ae_title": "READER", "host": "127.0.0.1", "port": 1, "allow": ["find"]}
        write_config(tmp_path, access={"unknown_peers": []}, peers=[peer], **sections)

        line = await _reload(served, "configuration reloaded")
        still_open = await asyncio.to_thread(running.send_c_echo)
        await asyncio.to_thread(running.release)
        stranger = await rejection(pacs, "STRANGER")
        reader = await asyncio.to_thread(scu.context_results, pacs, "READER", [STUDY_FIND])
    finally:
        await served.stop()

    assert before == {STUDY_FIND: USER_REJECTION, VERIFICATION: ACCEPTED}
    assert "1 peers, unknown AEs may nothing" in line
    assert int(still_open.Status) == SUCCESS  # running associations keep what they negotiated
    assert stranger == NOT_RECOGNIZED
    assert reader == {STUDY_FIND: ACCEPTED}


async def test_a_bad_file_on_sighup_keeps_the_running_settings(
    tmp_path: Path, database_url: str
) -> None:
    sections = {"database": {"url": database_url}, "storage": {"min_free_bytes": 0}}
    config = write_config(tmp_path, access={"unknown_peers": []}, **sections)
    served = await start_serve(config)
    try:
        await served.wait_listening()
        pacs = PacsAddress(served.host, served.port)
        config.write_text(
            config.read_text().replace("unknown_peers = []", 'unknown_peers = ["echo"')
        )

        line = await _reload(served, "configuration not reloaded")
        stranger = await rejection(pacs, "STRANGER")
        config.write_text(config.read_text().replace('["echo"', '["echo"]'))
        fixed = await _reload(served, "configuration reloaded")
        echo = await asyncio.to_thread(scu.echo, pacs, ae_title="STRANGER")
    finally:
        code = await served.stop()

    assert " ERROR pacs.app: configuration not reloaded, keeping the running one: " in line
    assert "not valid TOML" in line
    assert stranger == NOT_RECOGNIZED
    assert "unknown AEs may echo" in fixed
    assert echo == SUCCESS
    assert code == 0


async def test_the_deprecated_server_key_still_works_and_is_named_in_the_log(
    tmp_path: Path, database_url: str
) -> None:
    sections = {"database": {"url": database_url}, "storage": {"min_free_bytes": 0}}
    config = write_config(tmp_path, **sections)
    config.write_text(
        config.read_text().replace("[server]\n", "[server]\ncheck_called_ae_title = true\n")
    )
    served = await start_serve(config)
    try:
        await served.wait_listening()
        line = await served.wait_for_line("check_called_ae_title is deprecated")
        pacs = PacsAddress(served.host, served.port, "WRONG")
        wrong_called = await rejection(pacs, "STRANGER")
    finally:
        await served.stop()

    assert " WARNING pacs.cli: " in line
    assert "set check_called_ae_title in [access] instead" in line
    assert wrong_called == (0x01, 0x01, 0x07)  # called AE title not recognized
