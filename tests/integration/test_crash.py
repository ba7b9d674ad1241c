"""Acknowledged means durable: kill -9 the server mid-ingest and check what it promised."""

import asyncio
import signal
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from tests.conftest import make_instance
from tests.integration.conftest import StartPacs, write_config
from tests.integration.serve_process import start_serve
from tests.integration.test_index_under_load import assert_counts_consistent

CT = "1.2.840.10008.5.1.4.1.1.2"
SENDERS = 4


def _send_until_dropped(
    host: str, port: int, study: str, series: str, acknowledged: list[str]
) -> None:
    """Store instances of one shared study until the server goes away; note each Success."""
    ae = AE(ae_title=f"MOD{len(acknowledged)}")
    ae.add_requested_context(CT, [ExplicitVRLittleEndian])
    ae.dimse_timeout = 10
    assoc = ae.associate(host, port)
    if not assoc.is_established:
        return
    try:
        while assoc.is_established:
            ds = make_instance(StudyInstanceUID=study, SeriesInstanceUID=series, PatientID="CRASH")
            response = assoc.send_c_store(ds)
            if int(response.get("Status", -1)) == 0:
                acknowledged.append(ds.SOPInstanceUID)
            elif not response:
                return
    finally:
        if assoc.is_established:
            assoc.abort()


async def test_kill_9_during_concurrent_stores_loses_nothing_acknowledged(
    tmp_path: Path, start_pacs: StartPacs, database_url: str
) -> None:
    config = write_config(tmp_path, storage={"min_free_bytes": 0}, database={"url": database_url})
    served = await start_serve(config)
    await served.wait_listening()
    study, series = generate_uid(), generate_uid()
    acknowledged: list[list[str]] = [[] for _ in range(SENDERS)]
    senders = [
        asyncio.create_task(
            asyncio.to_thread(_send_until_dropped, served.host, served.port, study, series, acks)
        )
        for acks in acknowledged
    ]
    async with asyncio.timeout(60):
        while sum(map(len, acknowledged)) < 80:
            await asyncio.sleep(0.05)

    await served.stop(signal.SIGKILL)
    await asyncio.gather(*senders)

    restarted = await start_pacs(directory=tmp_path)
    assert restarted.app is not None
    index, store = restarted.app.index, restarted.app.store
    promised = [uid for acks in acknowledged for uid in acks]
    for uid in promised:
        row = await index.get_instance(uid)
        assert row is not None, f"{uid} was acknowledged but is not indexed"
        assert await asyncio.to_thread(store.verify, row.blob_sha256)
    for sha256 in await index.referenced_blobs():
        assert await asyncio.to_thread(store.verify, sha256), f"index points to bad file {sha256}"
    await assert_counts_consistent(restarted.app)  # no half-indexed instance survived
