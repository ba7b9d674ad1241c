"""The index under concurrent associations, and through a PostgreSQL outage, over DICOM."""

import asyncio
import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from sqlalchemy import text

from pacs.app import PacsApp
from tests.conftest import ONLY_POSTGRESQL, make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs

SUCCESS = 0x0000
CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DIMSE_TIMEOUT = 10.0


async def rows(app: PacsApp, sql: str) -> list[tuple[Any, ...]]:
    async with app.engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql))]


async def assert_counts_consistent(app: PacsApp) -> None:
    """Every computed count equals the rows it counts: no half-indexed instance."""
    assert (
        await rows(
            app,
            "SELECT s.series_instance_uid, s.number_of_instances, count(i.id) FROM series s "
            "LEFT JOIN instance i ON i.series_fk = s.id "
            "GROUP BY s.series_instance_uid, s.number_of_instances "
            "HAVING s.number_of_instances <> count(i.id)",
        )
        == []
    )
    assert (
        await rows(
            app,
            "SELECT st.study_instance_uid FROM study st "
            "WHERE st.number_of_instances <> "
            "(SELECT count(*) FROM instance i JOIN series s ON i.series_fk = s.id "
            " WHERE s.study_fk = st.id) "
            "OR st.number_of_series <> (SELECT count(*) FROM series s WHERE s.study_fk = st.id)",
        )
        == []
    )


async def indexed_uids(app: PacsApp) -> set[str]:
    return {uid for (uid,) in await rows(app, "SELECT sop_instance_uid FROM instance")}


def _same_studies(patient: int, study: Dataset, series: Dataset) -> Dataset:
    return make_instance(
        PatientID=f"P-{patient}",
        PatientName=f"Load^{patient}",
        StudyInstanceUID=study.StudyInstanceUID,
        SeriesInstanceUID=series.SeriesInstanceUID,
    )


async def test_eight_associations_storing_the_same_series_make_one_row_each(
    running_pacs: PacsAddress,
) -> None:
    """Issue 7: concurrent stores of shared patients/studies/series upsert, never collide."""
    app = running_pacs.app
    assert app is not None
    heads = [make_instance() for _ in range(2)]  # two patients, one study and series each
    per_association = [
        [_same_studies(n % 2, heads[n % 2], heads[n % 2]) for n in range(start, start + 12)]
        for start in range(8)
    ]
    barrier = threading.Barrier(8)

    def store_after_all_connect(datasets: list[Dataset]) -> list[int]:
        barrier.wait(timeout=30)
        return scu.store(running_pacs, datasets)

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=8) as modalities:  # one thread per association
        statuses = await asyncio.gather(
            *(
                loop.run_in_executor(modalities, store_after_all_connect, batch)
                for batch in per_association
            )
        )

    assert all(status == SUCCESS for batch in statuses for status in batch)
    assert await rows(app, "SELECT count(*) FROM patient") == [(2,)]
    assert await rows(app, "SELECT number_of_series, number_of_instances FROM study") == [
        (1, 48),
        (1, 48),
    ]
    assert await rows(app, "SELECT number_of_instances FROM series") == [(48,), (48,)]
    assert len(await indexed_uids(app)) == 96
    await assert_counts_consistent(app)


# ---------------------------------------------------------------- PostgreSQL outage


def _cluster() -> tuple[str, str] | None:
    """(version, name) of the local PostgreSQL cluster if this test may stop and start it."""
    if shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        return None
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*") if (p / "main").is_dir())
    return (versions[-1], "main") if versions else None


def _pg_ctl(action: str) -> None:
    cluster = _cluster()
    assert cluster is not None
    options = ["-m", "fast"] if action == "stop" else []
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action, *options],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _wait_for_postgres(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False)
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError("PostgreSQL did not come back")


@dataclass
class Modality:
    """A modality storing one instance at a time on one association, until told to stop."""

    address: PacsAddress
    sent: list[tuple[str, int]] = field(default_factory=list)  # uid, status
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(CT, [EXPLICIT_LE])
        ae.dimse_timeout = 3 * DIMSE_TIMEOUT  # longer than pacs's: pacs must answer first
        assoc = ae.associate(self.address.host, self.address.port, ae_title="PACS")
        assert assoc.is_established
        try:
            while not self.stop.is_set():
                ds = make_instance()
                reply = assoc.send_c_store(ds)
                status = int(reply.Status) if "Status" in reply else -1
                self.sent.append((ds.SOPInstanceUID, status))
                if status == -1:  # no answer: the association is gone
                    return
                if status != SUCCESS:
                    time.sleep(0.05)  # as a modality would pause before retrying
        finally:
            if assoc.is_established:
                assoc.release()

    def statuses(self) -> set[int]:
        return {status for _, status in self.sent}


def _is_out_of_resources(status: int) -> bool:
    return status & 0xFF00 == 0xA700


@ONLY_POSTGRESQL
@pytest.mark.skipif(_cluster() is None, reason="needs root and pg_ctlcluster to stop PostgreSQL")
async def test_a_postgresql_outage_answers_a7xx_and_recovers_by_itself(
    start_pacs: StartPacs,
) -> None:
    """Issue 7: PostgreSQL stopped during ingest, then started again."""
    pacs = await start_pacs(server={"dimse_timeout": DIMSE_TIMEOUT})
    app = pacs.app
    assert app is not None
    modality = Modality(pacs)
    sender = threading.Thread(target=modality.run)
    sender.start()
    try:
        await _wait_until(lambda: len(modality.sent) >= 20, "stores before the outage")
        await asyncio.to_thread(_pg_ctl, "stop")
        stopped_at = len(modality.sent)
        await _wait_until(
            lambda: sum(_is_out_of_resources(s) for _, s in modality.sent[stopped_at:]) >= 5,
            "failures during the outage",
        )
        assert await asyncio.to_thread(scu.echo, pacs) == SUCCESS  # the server is unharmed
    finally:
        await asyncio.to_thread(_pg_ctl, "start")
        await asyncio.to_thread(_wait_for_postgres)
    try:
        restarted_at = len(modality.sent)
        await _wait_until(
            lambda: sum(s == SUCCESS for _, s in modality.sent[restarted_at:]) >= 20,
            "stores after PostgreSQL came back",
        )
    finally:
        modality.stop.set()
        await asyncio.to_thread(sender.join, 60)

    during = modality.sent[stopped_at:restarted_at]
    # Every store was answered (none left to the modality's timeout), with Success or A7xx.
    assert all(s == SUCCESS or _is_out_of_resources(s) for s in modality.statuses())
    assert [s for _, s in during if s != SUCCESS], "no store failed while PostgreSQL was down"
    succeeded = {uid for uid, status in modality.sent if status == SUCCESS}
    indexed = await indexed_uids(app)
    # Every Success is indexed with its file; a refused store left nothing in the index
    # unless its commit reached PostgreSQL just as the connection died (in doubt).
    assert succeeded <= indexed
    assert indexed <= {uid for uid, _ in modality.sent}
    in_doubt = indexed - succeeded
    assert len(in_doubt) <= 1
    for uid in indexed:
        row = await app.index.get_instance(uid)
        assert row is not None and app.store.exists(row.blob_sha256)
    await assert_counts_consistent(app)


async def _wait_until(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
