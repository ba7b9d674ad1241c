"""RetrieveService.open over a real FileBlobStore: stored bytes as stored, converted bytes,
and the reasons an instance cannot go."""

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from pacs.archive.retrieve import RetrieveService
from pacs.dicom.part10 import file_meta_bytes
from pacs.dicom.selection import Selection
from pacs.errors import TransferUnavailable
from pacs.index.locate import StoredInstance
from pacs.store.blobstore import BlobRef, FileBlobStore
from pacs.threads import ThreadPools
from tests.conftest import blob_store, make_instance
from tests.unit.test_transcode import encode, parse


class NoInstances:
    async def summary(self, selection: Selection) -> tuple[int, set[tuple[str, str]]]:
        return 0, set()

    async def locate(
        self, selection: Selection, page_size: int = 500
    ) -> AsyncIterator[list[StoredInstance]]:
        pages: list[list[StoredInstance]] = []
        for page in pages:
            yield page


def put(store: FileBlobStore, data: bytes) -> BlobRef:
    with store.begin() as writer:
        writer.write(data)
        return writer.commit()


def stored_instance(store: FileBlobStore, syntax: str) -> tuple[StoredInstance, bytes]:
    """An instance put in the store as ingest writes it; returns it and its data set bytes."""
    ds = make_instance()
    if syntax == RLELossless:
        ds.compress(RLELossless)
    data_set = encode(ds, syntax)
    meta = file_meta_bytes(ds.SOPClassUID, ds.SOPInstanceUID, syntax, "STORESCU")
    blob = put(store, meta + data_set)
    instance = StoredInstance(ds.SOPClassUID, ds.SOPInstanceUID, syntax, blob.sha256, blob.size)
    return instance, data_set


async def read_all(
    service: RetrieveService, instance: StoredInstance, accepted: list[str]
) -> tuple[str, bytes]:
    syntax, data = await service.open(instance, accepted)
    return syntax, b"".join([chunk async for chunk in data.chunks()])


@pytest.fixture
def store(tmp_path: Path, thread_pools: ThreadPools) -> FileBlobStore:
    return blob_store(tmp_path / "store", thread_pools, fsync=False)


async def test_an_accepted_stored_syntax_sends_the_data_set_bytes_as_stored(
    store: FileBlobStore,
) -> None:
    instance, data_set = stored_instance(store, RLELossless)
    service = RetrieveService(NoInstances(), store)

    syntax, sent = await read_all(service, instance, [ExplicitVRLittleEndian, RLELossless])

    assert syntax == RLELossless
    assert sent == data_set


async def test_an_unaccepted_stored_syntax_is_converted_to_the_first_one_possible(
    store: FileBlobStore,
) -> None:
    instance, _ = stored_instance(store, ExplicitVRLittleEndian)
    service = RetrieveService(NoInstances(), store)

    syntax, sent = await read_all(service, instance, [RLELossless, ImplicitVRLittleEndian])

    assert syntax == ImplicitVRLittleEndian
    assert parse(sent, ImplicitVRLittleEndian).SOPInstanceUID == instance.sop_instance_uid


@pytest.mark.parametrize("accepted", [[ExplicitVRLittleEndian], [ImplicitVRLittleEndian], []])
async def test_a_missing_file_is_named_whatever_the_receiver_accepted(
    store: FileBlobStore, accepted: list[str]
) -> None:
    instance, _ = stored_instance(store, ExplicitVRLittleEndian)
    store.delete(instance.blob_sha256)
    service = RetrieveService(NoInstances(), store)

    with pytest.raises(TransferUnavailable, match="is missing") as raised:
        await service.open(instance, accepted)
    assert store.location(instance.blob_sha256) in str(raised.value)


async def test_a_stored_file_without_file_meta_cannot_be_read(store: FileBlobStore) -> None:
    ds = make_instance()
    blob = put(store, encode(ds, ExplicitVRLittleEndian))
    instance = StoredInstance(
        ds.SOPClassUID, ds.SOPInstanceUID, ExplicitVRLittleEndian, blob.sha256, blob.size
    )
    service = RetrieveService(NoInstances(), store)

    with pytest.raises(TransferUnavailable, match="cannot be read: not a Part 10 file"):
        await service.open(instance, [ExplicitVRLittleEndian])


@pytest.mark.parametrize("size_in_index", [-1, 1])
async def test_a_small_file_of_another_size_than_indexed_cannot_be_read(
    store: FileBlobStore, size_in_index: int
) -> None:
    instance, _ = stored_instance(store, ExplicitVRLittleEndian)
    other = dataclasses.replace(instance, blob_size=instance.blob_size + size_in_index)
    service = RetrieveService(NoInstances(), store)

    with pytest.raises(TransferUnavailable, match=r"cannot be read: it (holds more|ended after)"):
        await service.open(other, [ExplicitVRLittleEndian])


async def test_no_conversion_to_what_the_receiver_accepted_says_so(store: FileBlobStore) -> None:
    instance, _ = stored_instance(store, ExplicitVRLittleEndian)
    service = RetrieveService(NoInstances(), store)

    with pytest.raises(TransferUnavailable, match="no conversion between them exists"):
        await service.open(instance, [RLELossless])


def stored_large(store: FileBlobStore, pixel: int, rows: int) -> tuple[StoredInstance, bytes]:
    """A CT-sized instance (rows x 512, 16-bit) as ingest stores it, and its data set bytes."""
    ds = make_instance(Rows=rows, Columns=512, PixelData=bytes([pixel]) * (rows * 512 * 2))
    data_set = encode(ds, ExplicitVRLittleEndian)
    meta = file_meta_bytes(ds.SOPClassUID, ds.SOPInstanceUID, ExplicitVRLittleEndian, "MOD")
    blob = put(store, meta + data_set)
    instance = StoredInstance(
        ds.SOPClassUID, ds.SOPInstanceUID, ExplicitVRLittleEndian, blob.sha256, blob.size
    )
    return instance, data_set


async def test_a_recycled_read_buffer_carries_only_the_next_files_bytes(
    store: FileBlobStore,
) -> None:
    # The second file is shorter: what the first left in the buffer must not go out.
    first, first_bytes = stored_large(store, 1, 512)
    second, second_bytes = stored_large(store, 2, 300)
    service = RetrieveService(NoInstances(), store)

    _, data = await service.open(first, [ExplicitVRLittleEndian])
    whole = data.whole
    assert isinstance(whole, memoryview) and bytes(whole) == first_bytes
    data.recycle()
    _, again = await service.open(second, [ExplicitVRLittleEndian])
    reused = again.whole

    assert reused is not None and isinstance(reused, memoryview)
    assert reused.obj is whole.obj  # the same buffer, read into again
    assert bytes(reused) == second_bytes
