"""The real server on the S3 backend: store, retrieve, commitment, `pacs verify` and `pacs gc`
against a real S3 server (moto) on loopback, and what an object store outage does."""

import asyncio
import dataclasses
import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import obstore
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.dsutils import encode

import pacs.archive.gc
from benchmarks.s3_server import MotoServer
from pacs.admin import collect_garbage, verify_archive
from pacs.admin_rebuild import import_paths, reindex_archive
from pacs.archive.file_import import Fate
from pacs.config import Settings
from pacs.config_storage import S3Settings
from pacs.dicom.part10 import file_meta_bytes
from pacs.errors import StartupError
from pacs.store.s3_store import S3BlobStore
from tests.conftest import ONLY_SQLITE, make_instance
from tests.integration import scu
from tests.integration import test_commitment_scp as commitment
from tests.integration import test_retrieve_scp as retrieve
from tests.integration.conftest import PacsAddress, StartPacs, run_dcmtk

SUCCESS, OUT_OF_RESOURCES = 0x0000, 0xA700


def s3_storage(settings: S3Settings) -> dict[str, Any]:
    return {"backend": "s3", "s3": dataclasses.asdict(settings)}


def data_set_bytes(ds: Dataset) -> bytes:
    encoded = encode(ds, False, True)  # as pynetdicom sends it: Explicit VR Little Endian
    assert encoded is not None
    return bytes(encoded)


def _large_ct(study: str) -> Dataset:
    pixels = np.arange(1024 * 1024, dtype=np.uint16).tobytes()  # 2 MiB: read in ranges
    return make_instance(StudyInstanceUID=study, Rows=1024, Columns=1024, PixelData=pixels)


async def test_store_retrieve_commit_verify_and_gc_on_s3(
    start_pacs: StartPacs, s3_settings: S3Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pacs = await start_pacs(storage=s3_storage(s3_settings))
    assert pacs.app is not None and isinstance(pacs.app.store, S3BlobStore)
    store = pacs.app.store
    study = generate_uid()
    datasets = [make_instance(StudyInstanceUID=study) for _ in range(2)] + [_large_ct(study)]

    assert await asyncio.to_thread(scu.store, pacs, datasets) == [SUCCESS] * 3

    keys = {
        m["path"]
        for chunk in obstore.list(store.client, s3_settings.prefix.rstrip("/"))
        for m in chunk
    }
    rows = [await pacs.app.index.get_instance(ds.SOPInstanceUID) for ds in datasets]
    assert keys == {s3_settings.prefix + row.blob_sha256 for row in rows if row is not None}
    assert [p.name for p in (pacs.directory / "store").iterdir()] == [".staging"]  # type: ignore[operator]

    await _get_byte_equal(pacs, study, datasets, tmp_path)
    await _committed(pacs, datasets)
    await _verified_and_collected(pacs.app.settings, store, monkeypatch)


async def _get_byte_equal(
    pacs: PacsAddress, study: str, sent: list[Dataset], tmp_path: Path
) -> None:
    got = tmp_path / "getscu"
    got.mkdir()
    code, output = await run_dcmtk(
        "getscu", "-S", "-od", str(got), "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={study}", pacs.host, str(pacs.port),
    )  # fmt: skip
    assert code == 0, output
    files = {path.name.split(".", 1)[1]: path.read_bytes() for path in got.iterdir()}
    for ds in sent:
        assert files[ds.SOPInstanceUID].endswith(data_set_bytes(ds))


async def _committed(pacs: PacsAddress, datasets: list[Dataset]) -> None:
    reports = commitment.Reports()
    references = [(str(ds.SOPClassUID), str(ds.SOPInstanceUID)) for ds in datasets]
    info = commitment.action_information(generate_uid(), references)
    status = await asyncio.to_thread(commitment.request_commitment, pacs, info, reports, wait=10)
    assert status.Status == SUCCESS
    [(event_type, report, _)] = reports.events
    assert event_type == 1  # all committed, after re-hashing each object as it streams in
    assert {str(i.ReferencedSOPInstanceUID) for i in report.ReferencedSOPSequence} == {
        ds.SOPInstanceUID for ds in datasets
    }


async def _verified_and_collected(
    settings: Settings, store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan = b"stored, and no instance references it"
    address = hashlib.sha256(orphan).hexdigest()
    obstore.put(store.client, store.key(address), orphan)

    report = await verify_archive(settings)
    assert (report.instances_indexed, report.blobs_stored, report.blobs_rehashed) == (3, 4, 3)
    assert report.blobs_being_indexed == 1 and not report.findings  # young: a store under way

    young = await collect_garbage(settings)
    assert (young.unreferenced, young.kept_young, young.blobs_removed) == (1, 1, 0)
    # An hour's grace cannot pass in a test, nor can S3's Last-Modified be set back.
    monkeypatch.setattr(pacs.archive.gc, "GRACE", 0.0)
    collected = await collect_garbage(settings)
    assert collected.removed == [address] and collected.bytes_removed == len(orphan)

    after = await verify_archive(settings)
    assert (after.blobs_stored, after.blobs_rehashed, after.findings) == (3, 3, ())


def _ct(rows: int, columns: int) -> Dataset:
    pixels = np.zeros(rows * columns, dtype=np.uint16).tobytes()
    return make_instance(Rows=rows, Columns=columns, PixelData=pixels)


@ONLY_SQLITE
async def test_an_instance_that_arrives_whole_goes_to_the_bucket_from_memory(
    start_pacs: StartPacs, s3_settings: S3Settings
) -> None:
    """Instances below ingest's 1 MiB batch are never written locally: with the staging
    directory unusable (a file in its place), each is stored all the same, its object the
    Part 10 file; a larger one, which goes through a staging file, is refused."""
    pacs = await start_pacs(storage=s3_storage(s3_settings))
    assert pacs.app is not None and isinstance(pacs.app.store, S3BlobStore)
    store = pacs.app.store
    shutil.rmtree(store.staging_dir, ignore_errors=True)
    store.staging_dir.write_bytes(b"not a directory")
    small, ct = _ct(64, 64), _ct(512, 512)

    assert await asyncio.to_thread(scu.store, pacs, [small, ct]) == [SUCCESS] * 2

    for ds in (small, ct):
        row = await pacs.app.index.get_instance(ds.SOPInstanceUID)
        assert row is not None
        meta = file_meta_bytes(
            str(ds.SOPClassUID), ds.SOPInstanceUID, ExplicitVRLittleEndian, "MODALITY"
        )
        stored = obstore.get(store.client, store.key(row.blob_sha256)).bytes()
        assert stored == meta + data_set_bytes(ds)
    assert store.staging_dir.read_bytes() == b"not a directory"
    status, comment = await asyncio.to_thread(_store_status, pacs, _large_ct(generate_uid()))
    assert status == OUT_OF_RESOURCES and "cannot create a staging file" in comment


def _store_status(address: PacsAddress, ds: Dataset) -> tuple[int, str]:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(str(ds.SOPClassUID), ["1.2.840.10008.1.2.1"])
    assoc = ae.associate(address.host, address.port, ae_title=address.ae_title)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(ds)
        return int(status.Status), str(status.get("ErrorComment", ""))
    finally:
        assoc.release()


@ONLY_SQLITE
async def test_an_object_store_outage_refuses_stores_and_ends_by_itself(
    start_pacs: StartPacs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "pacs-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "pacs-test-secret")
    with MotoServer.start() as server:
        pacs = await start_pacs(storage=s3_storage(S3Settings(server.BUCKET, server.endpoint)))
        stored = make_instance()
        assert await asyncio.to_thread(_store_status, pacs, stored) == (SUCCESS, "")

        server.stop()
        status, comment = await asyncio.to_thread(_store_status, pacs, make_instance())
        assert status == OUT_OF_RESOURCES
        assert "object store: cannot store s3://pacs-blobs/" in comment
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = stored.StudyInstanceUID
        storage = [(str(stored.SOPClassUID), ["1.2.840.10008.1.2.1"])]
        final, response, _ = await asyncio.to_thread(retrieve._get, pacs, identifier, storage)
        assert final == retrieve.ALL_FAILED
        assert response.FailedSOPInstanceUIDList == stored.SOPInstanceUID

        server.run()  # empty again: moto keeps objects in memory
        assert await asyncio.to_thread(_store_status, pacs, make_instance()) == (SUCCESS, "")


@ONLY_SQLITE
async def test_pacs_import_uploads_to_the_bucket_and_reindex_refuses_it(
    start_pacs: StartPacs, s3_settings: S3Settings, tmp_path: Path
) -> None:
    pacs = await start_pacs(storage=s3_storage(s3_settings))
    assert pacs.app is not None
    ds = make_instance()
    ds.save_as(tmp_path / "in.dcm", enforce_file_format=True)

    report = await import_paths(pacs.app.settings, [tmp_path / "in.dcm"])

    assert report.counts[Fate.STORED] == 1, report.refused
    row = await pacs.app.index.get_instance(ds.SOPInstanceUID)
    assert row is not None and await asyncio.to_thread(pacs.app.store.verify, row.blob_sha256)
    with pytest.raises(StartupError, match=r"\[storage\] backend.*filesystem store only"):
        await reindex_archive(pacs.app.settings, f"sqlite+aiosqlite:///{tmp_path / 'new.sqlite'}")
