"""Two `pacs serve` processes on one PostgreSQL database and one store, and the SCU calls
the tests of several processes make to either of them."""

import asyncio
import dataclasses
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE

from pacs.config_storage import S3Settings
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, write_config
from tests.integration.serve_process import ServeProcess, start_serve

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
SUCCESS = 0

# Where the processes keep their blobs: a section of pacs.toml for a shared store, by name.
StoreSection = Callable[[Path], dict[str, Any]]
STORE_BACKENDS = ("file", "s3")


@pytest.fixture(params=STORE_BACKENDS)
def shared_store(request: pytest.FixtureRequest) -> StoreSection:
    """The store both processes use: one directory, or one S3 bucket (moto's server, the
    prefix the test's own; each process stages under the shared directory)."""
    storage: dict[str, Any] = {"min_free_bytes": 0}
    if request.param == "s3":
        s3: S3Settings = request.getfixturevalue("s3_settings")
        storage |= {"backend": "s3", "s3": dataclasses.asdict(s3)}
    return lambda shared: {"storage": {"root": shared / "store", **storage}}


@dataclass
class Cluster:
    """Processes serving one configuration each, sharing the database and the store."""

    directory: Path
    sections: dict[str, Any]
    processes: list[ServeProcess] = field(default_factory=list)

    async def start(self, number: int) -> ServeProcess:
        """Start (or start again) process `number` on its own configuration directory."""
        own = self.directory / f"pacs{number}"
        own.mkdir(exist_ok=True)
        served = await start_serve(write_config(own, **self.sections))
        await served.wait_listening()
        if number < len(self.processes):
            self.processes[number] = served
        else:
            self.processes.append(served)
        return served

    def address(self, number: int) -> PacsAddress:
        served = self.processes[number]
        return PacsAddress(served.host, served.port)

    async def stop(self) -> None:
        for served in self.processes:
            if served.process.returncode is None:
                await served.stop()


@pytest.fixture
async def cluster_of(
    tmp_path: Path, database_url: str, shared_store: StoreSection
) -> AsyncIterator[Callable[..., Any]]:
    """Start `count` processes at once on the test's database and the shared store."""
    clusters: list[Cluster] = []

    async def start(count: int, **sections: Any) -> Cluster:
        merged: dict[str, Any] = {"database": {"url": database_url}, **shared_store(tmp_path)}
        for name, values in sections.items():
            merged[name] = (
                {**merged.get(name, {}), **values} if isinstance(values, dict) else values
            )
        cluster = Cluster(tmp_path, merged)
        clusters.append(cluster)
        for number in range(count):
            (tmp_path / f"pacs{number}").mkdir()
        # At once: the schema is created by whichever gets the migration lock first.
        started = await asyncio.gather(
            *(start_serve(write_config(tmp_path / f"pacs{n}", **merged)) for n in range(count))
        )
        cluster.processes = list(started)
        await asyncio.gather(*(served.wait_listening() for served in started))
        return cluster

    yield start
    for cluster in clusters:
        await cluster.stop()


def instance_with_pixels(**keys: Any) -> Dataset:
    """A CT instance whose pixels are its own (random), so equal pixels mean this instance."""
    return make_instance(PixelData=secrets.token_bytes(512), **keys)


def store_all(address: PacsAddress, datasets: list[Dataset]) -> list[int]:
    return scu.store(address, datasets)


def find(address: PacsAddress, level: str, **keys: Any) -> list[Dataset]:
    """C-FIND on the Study Root model; the matches (the final status must be Success)."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    status, matches = scu.find(address, STUDY_ROOT_FIND, identifier)
    assert status == SUCCESS
    return matches


def get_pixels(address: PacsAddress, study_uid: str) -> dict[str, bytes]:
    """C-GET a study; each received instance's pixel data, by SOP Instance UID."""
    received: dict[str, bytes] = {}

    def on_store(event: Any) -> None:
        received[str(event.request.AffectedSOPInstanceUID)] = bytes(event.dataset.PixelData)

    statuses = scu.get_study(address, study_uid, on_store)
    assert statuses[-1] == SUCCESS, [hex(s) for s in statuses[-3:]]
    return received


@dataclass
class Sender:
    """One modality storing new instances of a shared study on one association until told
    to stop or the server goes away; what was acknowledged, with its pixels."""

    address: PacsAddress
    study: str
    series: str
    acknowledged: dict[str, bytes] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        ae = AE(ae_title=f"MOD{os.getpid() % 1000}")
        ae.add_requested_context(CT, [ExplicitVRLittleEndian])
        ae.dimse_timeout = 10
        assoc = ae.associate(self.address.host, self.address.port)
        if not assoc.is_established:
            return
        try:
            while assoc.is_established and not self.stop.is_set():
                ds = instance_with_pixels(
                    StudyInstanceUID=self.study, SeriesInstanceUID=self.series, PatientID="KILL"
                )
                response = assoc.send_c_store(ds)
                if int(response.get("Status", -1)) == SUCCESS:
                    self.acknowledged[ds.SOPInstanceUID] = bytes(ds.PixelData)
                elif not response:
                    return
        finally:
            if assoc.is_established:
                assoc.release()
