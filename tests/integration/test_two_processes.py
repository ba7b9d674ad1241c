"""Two `pacs serve` processes on one PostgreSQL database and one store (issue 19): what either
acknowledged, both find; duplicates obey the policy; commitment reports go out once each."""

import asyncio
import signal
from pathlib import Path
from typing import Any

import asyncpg
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import ONLY_POSTGRESQL
from tests.integration import scu
from tests.integration.cluster import (  # noqa: F401 (fixtures)
    Sender,
    cluster_of,
    find,
    get_pixels,
    instance_with_pixels,
    shared_store,
    store_all,
)
from tests.integration.test_commitment_scp import (
    Reports,
    action_information,
    free_port,
    request_commitment,
    start_modality_scp,
)

pytestmark = ONLY_POSTGRESQL

SUCCESS, DUPLICATE_SOP_INSTANCE = 0x0000, 0x0111
ASSOCIATIONS = 4  # on each process
FAST_RETRY = {"retry_interval": 0.2, "max_retry_interval": 0.5, "report_deadline": 60}


async def _rows(database_url: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def _hierarchy() -> list[Dataset]:
    """2 patients with 2 studies each, of 2 series of 5 instances: 40 instances."""
    datasets = []
    for patient in range(2):
        for _ in range(2):
            study = generate_uid()
            for _ in range(2):
                series = generate_uid()
                datasets += [
                    instance_with_pixels(
                        PatientID=f"TWO-{patient}",
                        StudyInstanceUID=study,
                        SeriesInstanceUID=series,
                        InstanceNumber=number,
                    )
                    for number in range(1, 6)
                ]
    return datasets


async def _store_everything_twice(addresses: list[Any], datasets: list[Dataset]) -> list[int]:
    """Every instance to both processes at once, over 4 associations to each; the statuses."""
    rotated = datasets[7:] + datasets[:7]  # the same instance on another association there
    calls = [
        asyncio.to_thread(store_all, address, order[k::ASSOCIATIONS])
        for address, order in zip(addresses, (datasets, rotated), strict=True)
        for k in range(ASSOCIATIONS)
    ]
    return [status for statuses in await asyncio.gather(*calls) for status in statuses]


async def _assert_every_count(address: Any, datasets: list[Dataset]) -> None:
    """Study, series and image level C-FIND of the stored hierarchy, from one process."""
    studies = await asyncio.to_thread(
        find,
        address,
        "STUDY",
        PatientID="TWO-*",
        StudyInstanceUID="",
        NumberOfStudyRelatedSeries="",
        NumberOfStudyRelatedInstances="",
    )
    assert sorted(str(s.StudyInstanceUID) for s in studies) == sorted(
        {str(ds.StudyInstanceUID) for ds in datasets}
    )
    assert {
        (int(s.NumberOfStudyRelatedSeries), int(s.NumberOfStudyRelatedInstances)) for s in studies
    } == {(2, 10)}
    found: list[str] = []
    for study in studies:
        series = await asyncio.to_thread(
            find,
            address,
            "SERIES",
            StudyInstanceUID=study.StudyInstanceUID,
            SeriesInstanceUID="",
            NumberOfSeriesRelatedInstances="",
        )
        assert [int(s.NumberOfSeriesRelatedInstances) for s in series] == [5, 5]
        for one in series:
            images = await asyncio.to_thread(
                find,
                address,
                "IMAGE",
                StudyInstanceUID=study.StudyInstanceUID,
                SeriesInstanceUID=one.SeriesInstanceUID,
                SOPInstanceUID="",
            )
            found += [str(i.SOPInstanceUID) for i in images]
    assert sorted(found) == sorted(str(ds.SOPInstanceUID) for ds in datasets)  # none twice


async def test_eight_associations_on_two_processes_store_each_instance_once(
    cluster_of: Any,  # noqa: F811
    database_url: str,
) -> None:
    cluster = await cluster_of(2)
    addresses = [cluster.address(0), cluster.address(1)]
    datasets = _hierarchy()

    statuses = await _store_everything_twice(addresses, datasets)

    assert statuses == [SUCCESS] * (2 * len(datasets))  # identical duplicates are accepted
    for address in addresses:
        await _assert_every_count(address, datasets)
    pixels = {str(ds.SOPInstanceUID): bytes(ds.PixelData) for ds in datasets}
    for n, study in enumerate(sorted({str(ds.StudyInstanceUID) for ds in datasets})):
        received = await asyncio.to_thread(get_pixels, addresses[n % 2], study)
        assert received == {uid: pixels[uid] for uid in received}
        assert len(received) == 10
    [(patients,)] = await _rows(database_url, "SELECT count(*) FROM patient")
    assert patients == 2


async def test_one_instance_sent_to_two_processes_at_once_obeys_reject(
    cluster_of: Any,  # noqa: F811
    database_url: str,
) -> None:
    cluster = await cluster_of(2, storage={"duplicate_policy": "reject"})
    study, series = generate_uid(), generate_uid()
    first = [
        instance_with_pixels(StudyInstanceUID=study, SeriesInstanceUID=series) for _ in range(20)
    ]
    second = [
        instance_with_pixels(
            **{k: ds.get(k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
        )
        for ds in first
    ]

    statuses = await asyncio.gather(
        asyncio.to_thread(store_all, cluster.address(0), first),
        asyncio.to_thread(store_all, cluster.address(1), second),
    )

    received = await asyncio.to_thread(get_pixels, cluster.address(1), study)
    assert len(received) == 20
    for a, b, status_a, status_b in zip(first, second, *statuses, strict=True):
        assert sorted((status_a, status_b)) == [SUCCESS, DUPLICATE_SOP_INSTANCE]
        kept = a if status_a == SUCCESS else b
        assert received[str(a.SOPInstanceUID)] == bytes(kept.PixelData)
    [(rows,)] = await _rows(database_url, "SELECT count(*) FROM instance")
    assert rows == 20


async def _wait_all_reported(database_url: str, count: int) -> None:
    async with asyncio.timeout(30):
        while True:
            rows = await _rows(database_url, "SELECT state FROM commitment_request")
            if len(rows) == count and all(state == "reported" for (state,) in rows):
                return
            await asyncio.sleep(0.1)


async def test_each_commitment_report_is_delivered_once_whichever_process_took_it(
    cluster_of: Any,  # noqa: F811
    database_url: str,
) -> None:
    peer_port = free_port()
    elsewhere = Reports()  # reports on a new association, to the modality's own SCP
    modality = start_modality_scp(peer_port, elsewhere)
    try:
        cluster = await cluster_of(
            2,
            peers=[{"ae_title": "MODALITY", "host": "127.0.0.1", "port": peer_port}],
            commitment=FAST_RETRY,
        )
        addresses = [cluster.address(0), cluster.address(1)]
        datasets = [instance_with_pixels() for _ in range(8)]
        await asyncio.to_thread(store_all, addresses[0], datasets)
        requests = []
        for n, ds in enumerate(datasets):
            info = action_information(
                generate_uid(), [(str(ds.SOPClassUID), str(ds.SOPInstanceUID))]
            )
            # Half keep the association open for the report, half release it at once.
            requests.append((addresses[n % 2], info, Reports(), 10.0 if n % 4 < 2 else 0.0))
        results = await asyncio.gather(
            *(asyncio.to_thread(request_commitment, a, i, r, wait=w) for a, i, r, w in requests)
        )
        assert [int(status.Status) for status in results] == [SUCCESS] * len(requests)
        await _wait_all_reported(database_url, len(requests))
    finally:
        modality.shutdown()

    delivered = [
        info.TransactionUID
        for r in [elsewhere, *(r for *_, r, _ in requests)]
        for _, info, _ in r.events
    ]
    assert sorted(delivered) == sorted(info.TransactionUID for _, info, _, _ in requests)
    for _, _, reports, wait in requests:
        assert all(where == "same association" for _, _, where in reports.events) or not wait


async def test_kill_9_of_one_process_loses_nothing_and_the_other_keeps_serving(
    cluster_of: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    cluster = await cluster_of(2)
    study, series = generate_uid(), generate_uid()
    senders = [Sender(cluster.address(n % 2), study, series) for n in range(2 * ASSOCIATIONS)]
    running = [asyncio.create_task(asyncio.to_thread(s.run)) for s in senders]
    async with asyncio.timeout(60):
        while sum(len(s.acknowledged) for s in senders) < 80:
            await asyncio.sleep(0.05)

    await cluster.processes[0].stop(signal.SIGKILL)
    survivors = senders[1::2]
    after_kill = sum(len(s.acknowledged) for s in survivors)
    async with asyncio.timeout(60):  # the other process goes on storing
        while sum(len(s.acknowledged) for s in survivors) < after_kill + 40:
            await asyncio.sleep(0.05)
    assert await asyncio.to_thread(scu.echo, cluster.address(1)) == SUCCESS
    for sender in senders:
        sender.stop.set()
    await asyncio.gather(*running)

    promised = {uid: pixels for s in senders for uid, pixels in s.acknowledged.items()}
    await _assert_kept(cluster.address(1), study, series, promised)  # the survivor
    await cluster.start(0)
    await _assert_kept(cluster.address(0), study, series, promised)  # the one killed


async def _assert_kept(address: Any, study: str, series: str, promised: dict[str, bytes]) -> None:
    """Every acknowledged instance is found and retrieved with its pixels, and the series'
    count equals the instances found (none half-indexed)."""
    images = await asyncio.to_thread(
        find, address, "IMAGE", StudyInstanceUID=study, SeriesInstanceUID=series, SOPInstanceUID=""
    )
    found = {str(i.SOPInstanceUID) for i in images}
    assert found >= promised.keys()
    [counted] = await asyncio.to_thread(
        find,
        address,
        "SERIES",
        StudyInstanceUID=study,
        SeriesInstanceUID=series,
        NumberOfSeriesRelatedInstances="",
    )
    assert int(counted.NumberOfSeriesRelatedInstances) == len(found) == len(images)
    received = await asyncio.to_thread(get_pixels, address, study)
    assert {uid: received.get(uid) for uid in promised} == promised
