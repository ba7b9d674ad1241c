"""RetrieveService.read_ahead over a real index and store: the next instance is opened while
the one before it goes out, and one opened ahead is released when the sender stops.

Which files are open is read from /proc/self/fd, as the operating system sees it.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from io import BytesIO
from pathlib import Path

import pytest
from pydicom.filereader import read_dataset
from pydicom.uid import ExplicitVRLittleEndian

from pacs.archive.records import record_for
from pacs.archive.retrieve import CHUNK, Outgoing, RetrieveService
from pacs.dicom.header import split_by_level
from pacs.dicom.levels import QueryLevel
from pacs.dicom.selection import Selection
from pacs.index.locate import Locator
from pacs.index.reads import Reads
from pacs.index.repository import Index
from pacs.store.blobstore import FileBlobStore
from pacs.threads import ThreadPools
from tests.conftest import make_instance

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="reads open files from /proc/self/fd"
)


def open_files(under: Path) -> set[Path]:
    """The files under `under` that this process holds open."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # closed since the listing
            continue
        if target.is_relative_to(under):
            found.add(target)
    return found


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Archive:
    """Three instances of one study, each more than one read of CHUNK bytes, in a real store
    and index."""

    def __init__(self, store: FileBlobStore, service: RetrieveService) -> None:
        self.store = store
        self.service = service
        self.files: list[Path] = []  # in the order they are sent
        self.study_uid = ""

    def open_files(self) -> set[Path]:
        return open_files(self.store.root)

    def read_ahead(self) -> AsyncGenerator[Outgoing, None]:
        selection = Selection(QueryLevel.STUDY, study_uids=(self.study_uid,))
        return self.service.read_ahead(selection, lambda _: [ExplicitVRLittleEndian])


@pytest.fixture
async def archive(index: Index, reads: Reads, tmp_path: Path, thread_pools: ThreadPools) -> Archive:
    pools = thread_pools
    store = FileBlobStore(tmp_path / "store", commits=pools.store_commits, fsync=False)
    archive = Archive(store, RetrieveService(Locator(reads), store))
    first = make_instance()  # its study and series hold the three
    archive.study_uid = first.StudyInstanceUID
    base = uuid.uuid4().int
    records = []
    for number in range(1, 4):
        # The index sends a study's instances in SOP Instance UID order: 1, 2, 3 here.
        ds = make_instance(
            SOPInstanceUID=f"2.25.{base}.{number}",
            StudyInstanceUID=first.StudyInstanceUID,
            SeriesInstanceUID=first.SeriesInstanceUID,
            InstanceNumber=number,
            Rows=1024,
            Columns=1024,
            PixelData=bytes([number]) * (2 * 1024 * 1024),
        )
        encoded = BytesIO()
        ds.save_as(encoded, enforce_file_format=True)
        with store.begin() as writer:
            writer.write(encoded.getvalue())
            ref = writer.commit()
        archive.files.append(store.path_of(ref.sha256))
        records.append(record_for(split_by_level(ds), ExplicitVRLittleEndian, ref, "MOD"))
    await index.add_instances(records, "keep")
    return archive


async def send(outgoing: Outgoing) -> bytes:
    """What a receiver gets of one instance."""
    syntax, data = await outgoing.open()
    assert syntax == ExplicitVRLittleEndian
    return b"".join([chunk async for chunk in data.chunks()])


async def test_each_instance_is_opened_while_the_one_before_goes_out(archive: Archive) -> None:
    _, second_file, third_file = archive.files
    sent: list[bytes] = []

    async with aclosing(archive.read_ahead()) as ahead:
        first = await anext(ahead)
        # Nobody asked for the second yet: it is opened ahead, and only it.
        await until(lambda: second_file in archive.open_files(), "the second opened ahead")
        assert third_file not in archive.open_files()

        sent.append(await send(first))
        async for outgoing in ahead:
            sent.append(await send(outgoing))

    assert archive.open_files() == set()
    assert [len(data_set) > CHUNK for data_set in sent] == [True] * 3
    for data_set, path, number in zip(sent, archive.files, (1, 2, 3), strict=True):
        assert path.read_bytes().endswith(data_set)  # the data set, as stored
        ds = read_dataset(BytesIO(data_set), is_implicit_VR=False, is_little_endian=True)
        assert ds.InstanceNumber == number
        assert ds.PixelData == bytes([number]) * (2 * 1024 * 1024)


async def test_the_instance_opened_ahead_is_released_when_the_sender_stops(
    archive: Archive,
) -> None:
    second_file = archive.files[1]
    ahead = archive.read_ahead()

    first = await anext(ahead)
    await until(lambda: second_file in archive.open_files(), "the second opened ahead")
    first.discard()  # the caller's to release: it was handed over
    await ahead.aclose()

    await until(lambda: archive.open_files() == set(), "every file released")


async def test_the_instance_opened_ahead_is_released_when_the_sender_is_cancelled(
    archive: Archive,
) -> None:
    _, second_file, _ = archive.files
    receiving = asyncio.Event()

    async def send_to_a_receiver_that_never_answers() -> None:
        async with aclosing(archive.read_ahead()) as ahead:
            async for outgoing in ahead:
                _, data = await outgoing.open()
                async for _ in data.chunks():
                    receiving.set()
                    await asyncio.Event().wait()

    sender = asyncio.create_task(send_to_a_receiver_that_never_answers())
    await asyncio.wait_for(receiving.wait(), 10)
    await until(lambda: second_file in archive.open_files(), "the second opened ahead")
    sender.cancel()

    with pytest.raises(asyncio.CancelledError):
        await sender
    await until(lambda: archive.open_files() == set(), "every file released")
