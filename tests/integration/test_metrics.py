"""The Prometheus endpoint, scraped over real HTTP while real associations store and query."""

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydicom.dataset import Dataset

from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(address: PacsAddress, path: str = "/metrics") -> tuple[str, Samples]:
    """GET the endpoint with urllib; its content type and every sample by (name, labels)."""
    assert address.app is not None and address.app.metrics_endpoint is not None
    host, port = address.app.metrics_endpoint.address
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return content_type, samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _stored_file_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in store.rglob("*") if p.is_file() and len(p.name) == 64)


async def test_a_scrape_counts_stores_finds_gets_and_open_associations(
    start_pacs: StartPacs,
) -> None:
    pacs = await start_pacs(metrics={"port": 0})
    assert pacs.directory is not None
    _, before = await asyncio.to_thread(_scrape, pacs)
    assert _value(before, "pacs_index_instances") == 0
    assert _value(before, "pacs_associations_open") == 0

    study = make_instance().StudyInstanceUID
    instances = [make_instance(StudyInstanceUID=study, InstanceNumber=n) for n in (1, 2, 3)]
    again = instances[0]  # the same content again: stored once
    assert await asyncio.to_thread(scu.store, pacs, [*instances, again]) == [0, 0, 0, 0]
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study
    final, matches = await asyncio.to_thread(scu.find, pacs, STUDY_ROOT_FIND, query)
    assert (final, len(matches)) == (0, 1)
    assert (await asyncio.to_thread(scu.get_study, pacs, study))[-1] == 0

    held = await asyncio.to_thread(scu.associate, pacs)  # open while the next scrape runs
    try:
        content_type, after = await asyncio.to_thread(_scrape, pacs)
    finally:
        await asyncio.to_thread(held.release)

    assert content_type.startswith("text/plain; version=0.0.4")
    requests = "pacs_dimse_requests_total"
    ok = "0x0000"
    assert _value(after, requests, operation="C-STORE", calling_ae="MODALITY", status=ok) == 4
    assert _value(after, requests, operation="C-FIND", calling_ae="WORKSTATION", status=ok) == 1
    assert _value(after, requests, operation="C-GET", calling_ae="GETTER", status=ok) == 1
    durations = "pacs_dimse_request_duration_seconds"
    for operation, count in (("C-STORE", 4), ("C-FIND", 1), ("C-GET", 1), ("C-MOVE", 0)):
        assert _value(after, f"{durations}_count", operation=operation) == count
        assert _value(after, f"{durations}_bucket", operation=operation, le="+Inf") == count
    assert _value(after, f"{durations}_sum", operation="C-STORE") > 0

    file_bytes = _stored_file_bytes(pacs.directory / "store")
    assert _value(after, "pacs_stored_bytes_total") == file_bytes
    # Sent: the three data sets without their File Meta Information.
    assert 0 < _value(after, "pacs_sent_bytes_total") < file_bytes

    assert _value(after, "pacs_associations_accepted_total") == 4
    assert _value(after, "pacs_associations_open") == 1
    assert _value(after, "pacs_index_instances") == 3
    assert _value(after, "pacs_group_commit_batch_size_sum") == 4
    assert _value(after, "pacs_group_commit_batch_size_count") >= 1
    assert _value(after, "pacs_store_free_bytes") > 0
    assert _value(after, "pacs_commitment_transactions", state="pending") == 0
    assert _value(after, "pacs_commitment_transactions", state="undeliverable") == 0


async def test_refused_associations_are_counted(start_pacs: StartPacs) -> None:
    pacs = await start_pacs(metrics={"port": 0}, access={"unknown_peers": []})

    assert await asyncio.to_thread(scu.echo, pacs, ae_title="STRANGER") == -1

    _, after = await asyncio.to_thread(_scrape, pacs)
    assert _value(after, "pacs_associations_refused_total") == 1
    assert _value(after, "pacs_associations_accepted_total") == 0


async def test_each_server_in_a_process_serves_its_own_counters(start_pacs: StartPacs) -> None:
    first = await start_pacs(metrics={"port": 0})
    second = await start_pacs(metrics={"port": 0})

    assert await asyncio.to_thread(scu.echo, first) == 0

    _, one = await asyncio.to_thread(_scrape, first)
    _, two = await asyncio.to_thread(_scrape, second)
    echo = {"operation": "C-ECHO", "calling_ae": "TESTSCU", "status": "0x0000"}
    assert _value(one, "pacs_dimse_requests_total", **echo) == 1
    assert _value(two, "pacs_dimse_requests_total", **echo) == 0


async def test_only_the_metrics_path_is_served(start_pacs: StartPacs) -> None:
    pacs = await start_pacs(metrics={"port": 0})

    with pytest.raises(urllib.error.HTTPError) as error:
        await asyncio.to_thread(_scrape, pacs, "/elsewhere")
    assert error.value.code == 404


async def test_without_a_metrics_table_nothing_listens(running_pacs: PacsAddress) -> None:
    assert running_pacs.app is not None
    assert running_pacs.app.metrics_endpoint is None
