"""`[server] workers = 2`: one `pacs serve` supervising two serving processes on one port."""

import asyncio
import os
import re
import signal
from pathlib import Path
from typing import Any

import aiohttp
from pydicom.uid import generate_uid

from benchmarks.certificates import Pki
from tests.conftest import ONLY_POSTGRESQL
from tests.integration import scu
from tests.integration.cluster import find, instance_with_pixels, store_all
from tests.integration.conftest import PacsAddress, write_config
from tests.integration.serve_process import ServeProcess, run_pacs, start_serve
from tests.integration.test_tls import _echoscu, _tls_args, pki  # noqa: F401 (fixture)

SUCCESS = 0
TLS_LISTENING = re.compile(r"worker-(\d) pacs.app: pacs listening on .* and [\d.]+:(\d+) \(TLS\)")
STARTED = re.compile(r"worker (\d) started \(pid (\d+)\)")


async def _supervisor(
    tmp_path: Path, database_url: str, **sections: Any
) -> tuple[ServeProcess, dict[int, int]]:
    """Start `pacs serve` with two workers; it and the pid of each worker, by number."""
    config = write_config(
        tmp_path,
        server={"workers": 2},
        database={"url": database_url},
        storage={"min_free_bytes": 0},
        **sections,
    )
    served = await start_serve(config)
    await served.wait_for_line("with 2 workers")
    await served.wait_listening()
    pids = {int(m[1]): int(m[2]) for line in served.log if (m := STARTED.search(line))}
    return served, pids


async def _refused(address: PacsAddress) -> bool:
    try:
        _, writer = await asyncio.open_connection(address.host, address.port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


@ONLY_POSTGRESQL
async def test_a_killed_worker_is_restarted_and_sigterm_stops_all(
    tmp_path: Path, database_url: str
) -> None:
    served, pids = await _supervisor(tmp_path, database_url)
    address = PacsAddress(served.host, served.port)
    study = generate_uid()
    datasets = [instance_with_pixels(StudyInstanceUID=study) for _ in range(8)]
    calls = [asyncio.to_thread(store_all, address, datasets[k::4]) for k in range(4)]
    assert [s for statuses in await asyncio.gather(*calls) for s in statuses] == [SUCCESS] * 8

    mark = len(served.log)
    os.kill(pids[1], signal.SIGKILL)
    line = await served.wait_for_line(f"worker 1 (pid {pids[1]}) was killed by SIGKILL", mark)
    assert " WARNING " in line
    assert await asyncio.to_thread(scu.echo, address) == SUCCESS  # worker 2 serves meanwhile
    await served.wait_for_line("worker 1 started (pid", mark)
    await served.wait_for_line("worker-1 pacs.app: pacs listening on", mark)
    for _ in range(4):  # whichever worker takes the association sees all of them
        found = await asyncio.to_thread(
            find, address, "STUDY", StudyInstanceUID=study, NumberOfStudyRelatedInstances=""
        )
        assert [int(s.NumberOfStudyRelatedInstances) for s in found] == [8]

    assert await served.stop(signal.SIGTERM) == 0
    assert sum("pacs.app: pacs stopped" in line for line in served.log[mark:]) == 2
    assert await _refused(address)


@ONLY_POSTGRESQL
async def test_workers_stop_by_themselves_when_the_supervisor_is_killed(
    tmp_path: Path, database_url: str
) -> None:
    served, _ = await _supervisor(tmp_path, database_url)
    address = PacsAddress(served.host, served.port)

    await served.stop(signal.SIGKILL)

    async with asyncio.timeout(30):  # each worker's graceful stop, then nothing listens
        while not await _refused(address):
            await asyncio.sleep(0.1)


async def test_several_workers_on_sqlite_are_refused_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, server={"workers": 2})

    code, output = await run_pacs("serve", "--config", str(config), env={"PACS_DATABASE_URL": ""})

    assert code == 2
    [line] = output.strip().splitlines()
    assert "[server] workers: 2 processes need PostgreSQL" in line


@ONLY_POSTGRESQL
async def test_both_workers_listen_on_the_same_tls_port(
    tmp_path: Path,
    database_url: str,
    pki: Pki,  # noqa: F811
) -> None:
    tls = {
        "port": 0,
        "certificate": pki.server.certificate,
        "private_key": pki.server.private_key,
        "ca_certificates": pki.ca,
    }
    served, _ = await _supervisor(tmp_path, database_url, tls=tls)
    try:
        ports = {m[1]: int(m[2]) for line in served.log if (m := TLS_LISTENING.search(line))}
        assert set(ports) == {"1", "2"}
        assert len(set(ports.values())) == 1
        address = PacsAddress(served.host, ports["1"])
        for _ in range(2):
            code, output = await _echoscu(address, *_tls_args(pki, pki.client))
            assert code == 0, output
    finally:
        assert await served.stop(signal.SIGTERM) == 0


WEB_AT = re.compile(r"worker-(\d) pacs\.web\.server: DICOMweb at (http://[\d.]+:(\d+)\S*)")


@ONLY_POSTGRESQL
async def test_both_workers_serve_dicomweb_on_one_port(tmp_path: Path, database_url: str) -> None:
    served, _ = await _supervisor(tmp_path, database_url, web={"port": 0})
    try:
        urls = {m[1]: m[2] for line in served.log if (m := WEB_AT.search(line))}
        assert set(urls) == {"1", "2"}
        assert len(set(urls.values())) == 1  # one port, the supervisor's
        async with aiohttp.ClientSession() as session:
            for _ in range(4):  # new connections: the kernel spreads them over both
                async with session.get(f"{urls['1']}/studies") as response:
                    assert response.status in (200, 204)
    finally:
        assert await served.stop(signal.SIGTERM) == 0
