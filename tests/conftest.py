"""Shared test fixtures: synthetic DICOM data sets, and a database per test on each engine."""

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from benchmarks.s3_server import MotoServer
from pacs.config_storage import S3Settings
from pacs.store.blobstore import FileBlobStore
from pacs.threads import ThreadPools

DatasetFactory = Callable[..., Dataset]


def make_instance(**overrides: Any) -> Dataset:
    """A small CT image (16x16, 16-bit) with a full patient/study/series header."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "P-0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = generate_uid()
    ds.StudyDate = "20261122"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC-1"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.StudyDescription = "CT CHEST"
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.SeriesNumber = 2
    ds.SeriesDescription = "AXIAL 5mm"
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 16
    ds.Columns = 16
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.PixelData = bytes(range(256)) * 2
    for keyword, value in overrides.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", CTImageStorage)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", generate_uid())
    return ds


@pytest.fixture
def make_ct() -> DatasetFactory:
    return make_instance


@pytest.fixture
def thread_pools() -> Iterator[ThreadPools]:
    """The archive's thread pools, as the app creates them; closed after the test."""
    with ThreadPools() as pools:
        yield pools


def blob_store(
    root: Path, pools: ThreadPools, *, fsync: bool = True, min_free_bytes: int = 0
) -> FileBlobStore:
    """A file store at `root` on the test's thread pools."""
    return FileBlobStore(
        root,
        commits=pools.store_commits,
        fsync=fsync,
        min_free_bytes=min_free_bytes,
    )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """A real S3 server on loopback (moto's server mode) with one bucket, for the session:
    the one PACS_TEST_S3_ENDPOINT names (CI starts it), else one started here."""
    if endpoint := os.environ.get("PACS_TEST_S3_ENDPOINT"):
        yield MotoServer.existing(endpoint)
        return
    with MotoServer.start() as server:
        yield server


@pytest.fixture
def s3_settings(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> S3Settings:
    """[storage.s3] for one test: the session's bucket, under a prefix of the test's own.

    The credentials come from the environment, as in production (moto takes any).
    """
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "pacs-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "pacs-test-secret")
    prefix = f"test-{uuid.uuid4().hex[:12]}/"
    return S3Settings(s3_server.BUCKET, s3_server.endpoint, prefix)


POSTGRES_URL = os.environ.get(
    "PACS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _asyncpg_dsn(url: str) -> str:
    # asyncpg speaks libpq URLs: drop SQLAlchemy's "+asyncpg" driver suffix.
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+")[0]))


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.postgres)
# For a test of what only one engine does: it runs there, rather than being skipped on the other.
ONLY_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ONLY_POSTGRESQL = pytest.mark.parametrize("database_url", [POSTGRESQL], indirect=True)


@pytest.fixture(params=["sqlite", POSTGRESQL])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """URL of an empty database, dropped (or left in tmp_path) after the test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'index.db'}"
        return
    name = f"pacs_test_{uuid.uuid4().hex[:16]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
