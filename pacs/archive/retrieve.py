"""Retrieve: the instances a C-MOVE or C-GET names, each as bytes in a syntax the receiver took.

An instance goes out as stored (its data set bytes streamed from the file,
never decoded) whenever the receiver accepted the stored transfer syntax;
otherwise it is converted by `pacs.codec`, or fails with the reason.
"""

import asyncio
import io
import logging
import os
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from io import BufferedIOBase
from typing import BinaryIO, Protocol, TypeAlias

from pacs.archive.deidentification import Deidentification
from pacs.archive.read_buffers import POOLED_FROM, BufferPool
from pacs.codec import transcode
from pacs.dicom.part10 import HEAD, data_set_offset
from pacs.dicom.selection import Selection
from pacs.errors import TransferUnavailable
from pacs.index.locate import StoredInstance
from pacs.store.protocol import BlobStore

log = logging.getLogger(__name__)

# What retrieve hands net for each instance it sends (Outgoing.instance): the index's row,
# under the archive's name, so that net imports nothing from the index.
RetrievableInstance: TypeAlias = StoredInstance

CHUNK = 1024 * 1024  # bytes read from a stored file per worker-thread hop
# Instances opened in one worker-thread hop, at most: a hop (the thread's wake-up, the
# loop's, and their contention for the GIL) cost more than reading a small file.
BATCH_COUNT = 64
BATCH_BYTES = 2 * 1024 * 1024  # ... and the bytes they may hold, at most (one file beyond)


class InstanceSource(Protocol):
    async def summary(self, selection: Selection) -> tuple[int, set[tuple[str, str]]]: ...

    def locate(
        self, selection: Selection, page_size: int = 500
    ) -> AsyncIterator[list[StoredInstance]]: ...


def _size(stream: BinaryIO) -> int:
    """The size of a stored file, or of an in-memory one (a de-identified copy), which is
    read from its start."""
    try:
        return os.fstat(stream.fileno()).st_size
    except io.UnsupportedOperation:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        return size


class DataSetBytes:
    """An instance's data set bytes on their way out: the first chunk is read on opening,
    the rest on demand, so opening the next instance can overlap sending this one."""

    def __init__(
        self,
        first: bytes | memoryview,
        rest: BinaryIO | None = None,
        buffer: tuple[BufferPool, bytearray] | None = None,
    ) -> None:
        self._first = first
        self._rest = rest
        self.sent = 0  # bytes handed out by chunks() so far
        self._buffer = buffer  # where `first` lies, and the pool it goes back to
        # The SOP Instance UID the bytes carry when it is not the stored one (de-identified).
        self.sop_instance_uid: str | None = None

    @classmethod
    def read_stored(cls, stream: BinaryIO, pool: BufferPool | None = None) -> "DataSetBytes":
        """Read a stored file's first chunk, File Meta Information and all, in one read
        (into a buffer of `pool` when the file is large), and keep its data set bytes,
        taking the open file over: it stays open only if there is more. Blocking: callers
        run it in a worker thread."""
        buffer = None
        try:
            # Asking for no more than the file holds: a larger read allocated a buffer of
            # CHUNK, shrank it and made one more read() to find the end.
            size = _size(stream)
            wanted = min(size, CHUNK)
            if pool is not None and wanted >= POOLED_FROM and isinstance(stream, BufferedIOBase):
                buffer = (pool, pool.take())
                head = memoryview(buffer[1])[:wanted]
                head = head[: stream.readinto(head)]
            else:
                head = memoryview(stream.read(wanted))
            offset = data_set_offset(bytes(head[:HEAD]))
            if len(head) < wanted:
                raise ValueError(f"it ended after {len(head)} of its {size} bytes")
            if offset > len(head):
                raise ValueError("File Meta Information runs past the first chunk read")
        except BaseException:
            stream.close()
            raise
        if size < CHUNK:
            stream.close()
            return cls(head[offset:], None, buffer)
        return cls(head[offset:], stream, buffer)

    @classmethod
    def from_file_bytes(cls, data: bytes) -> "DataSetBytes":
        """The data set bytes of a whole Part 10 file read into memory."""
        offset = data_set_offset(data[:HEAD])
        if offset > len(data):
            raise ValueError("File Meta Information runs past the end of the file")
        return cls(memoryview(data)[offset:])

    def recycle(self) -> None:
        """Give the buffer the bytes were read into back for another file: only once
        every byte has left the process (the caller knows), or nobody reads them."""
        if self._buffer is not None:
            pool, buffer = self._buffer
            self._first, self._buffer = b"", None
            pool.give(buffer)

    @property
    def whole(self) -> memoryview | bytes | None:
        """All the data set bytes, when they were read in one piece (else None)."""
        return self._first if self._rest is None else None

    async def chunks(self) -> AsyncIterator[bytes | memoryview]:
        """The bytes in chunks of at most CHUNK; the file is closed at the end."""
        try:
            chunk: bytes | memoryview
            chunk, self._first = self._first, b""
            while chunk:
                self.sent += len(chunk)
                yield chunk
                rest = self._rest
                chunk = await asyncio.to_thread(rest.read, CHUNK) if rest is not None else b""
        finally:
            self.close()

    def close(self) -> None:
        """Release the file (when the bytes were not all sent)."""
        if self._rest is not None:
            self._rest.close()
            self._rest = None


Opened = tuple[str, DataSetBytes]


class RetrieveService:
    """Plans retrieves and opens instances for transfer, a batch at a time with one read ahead."""

    def __init__(self, source: InstanceSource, store: BlobStore) -> None:
        self._source = source
        self._store = store
        self._buffers = BufferPool(CHUNK)

    async def summary(self, selection: Selection) -> tuple[int, set[tuple[str, str]]]:
        """How many instances, and their (SOP Class, stored transfer syntax) pairs."""
        return await self._source.summary(selection)

    async def instances(self, selection: Selection) -> AsyncIterator[StoredInstance]:
        """The instances to send, read from the index a page at a time."""
        async for page in self._source.locate(selection):
            for instance in page:
                yield instance

    async def open(
        self,
        instance: StoredInstance,
        accepted: Sequence[str],
        deidentification: Deidentification | None = None,
    ) -> Opened:
        """Pick the syntax to send in (stored if accepted) and return it with the data set bytes.

        `accepted` lists the transfer syntaxes the receiver accepted for the
        instance's SOP Class. Raises TransferUnavailable with the reason.
        """
        wanted = [(instance, accepted)]
        [opened] = await asyncio.to_thread(self._prepare_all, wanted, deidentification)
        return _opened_or_raise(opened)

    def _prepare_all(
        self,
        wanted: Sequence[tuple[StoredInstance, Sequence[str]]],
        deidentification: Deidentification | None = None,
    ) -> list[Opened | TransferUnavailable]:
        """`open` of several instances in one worker-thread hop; an instance that cannot go
        gets the reason in its place. On an unexpected error, what was opened is released."""
        opened: list[Opened | TransferUnavailable] = []
        try:
            for instance, accepted in wanted:
                opened.append(self._prepare_or_reason(instance, accepted, deidentification))
        except BaseException:
            for one in opened:
                if not isinstance(one, TransferUnavailable):
                    one[1].close()
            raise
        return opened

    def _prepare_or_reason(
        self,
        instance: StoredInstance,
        accepted: Sequence[str],
        deidentification: Deidentification | None,
    ) -> Opened | TransferUnavailable:
        uid, sha256 = instance.sop_instance_uid, instance.blob_sha256
        try:
            return self._prepare(instance, accepted, deidentification)
        except TransferUnavailable as exc:
            return exc
        except FileNotFoundError:
            return TransferUnavailable(f"{uid}: its file {self._store.location(sha256)} is missing")
        except (OSError, ValueError) as exc:
            where = self._store.location(sha256)
            return TransferUnavailable(f"{uid}: its file {where} cannot be read: {exc}")
        except transcode.ConversionUnavailable as exc:
            return TransferUnavailable(f"{uid}: {exc}")

    def _prepare(
        self,
        instance: StoredInstance,
        accepted: Sequence[str],
        deidentification: Deidentification | None,
    ) -> Opened:
        """`open` in a worker thread: the stored bytes (de-identified when asked), or the
        converted ones."""
        if deidentification is None:
            syntax = instance.transfer_syntax_uid
            if syntax in accepted and instance.blob_size < POOLED_FROM:
                whole = self._store.read(instance.blob_sha256, instance.blob_size)
                return syntax, DataSetBytes.from_file_bytes(whole)
            return self._encode(instance, self._store.open(instance.blob_sha256), accepted)
        stream = self._store.open(instance.blob_sha256)
        with stream:
            copy, new_uid = deidentification.rewrite(stream)
        syntax, data = self._encode(instance, copy, accepted)
        data.sop_instance_uid = new_uid
        return syntax, data

    def _encode(
        self, instance: StoredInstance, stream: BinaryIO, accepted: Sequence[str]
    ) -> Opened:
        """The bytes of the Part 10 file `stream` (taken over) in a syntax from `accepted`."""
        if instance.transfer_syntax_uid in accepted:
            data = DataSetBytes.read_stored(stream, self._buffers)
            return instance.transfer_syntax_uid, data
        with stream:
            for target in accepted:
                if transcode.can_convert(instance.transfer_syntax_uid, target):
                    return target, DataSetBytes(transcode.convert(stream, target))
        raise TransferUnavailable(
            f"{instance.sop_instance_uid}: stored as {instance.transfer_syntax_uid}, the receiver "
            f"accepted {', '.join(accepted) or 'nothing'} for {instance.sop_class_uid}, "
            "and no conversion between them exists"
        )

    async def _batches(self, selection: Selection) -> AsyncIterator[list[StoredInstance]]:
        """The instances to send in runs of at most BATCH_COUNT and about BATCH_BYTES."""
        batch: list[StoredInstance] = []
        size = 0
        async for instance in self.instances(selection):
            batch.append(instance)
            size += instance.blob_size
            if len(batch) >= BATCH_COUNT or size >= BATCH_BYTES:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    async def read_ahead(
        self,
        selection: Selection,
        accepted: Callable[[str], Sequence[str]],
        deidentification: Deidentification | None = None,
    ) -> AsyncGenerator["Outgoing", None]:
        """The instances to send, opened (see `open`) a batch per worker-thread hop, each
        batch while the one before it is sent: reading files, or converting them, overlaps
        the receiver's work.

        `accepted` gives the syntaxes the receiver took for a SOP Class. At most two
        batches are open at a time (a batch is one instance when its file is larger than
        BATCH_BYTES); the caller sends or discards each instance it is given.
        With `deidentification`, each goes out de-identified (see its `rewrite`).
        """
        # Not given out yet, in order: this generator's to release if the caller stops.
        waiting: deque[Outgoing] = deque()
        try:
            async for batch in self._batches(selection):
                wanted = [(instance, accepted(instance.sop_class_uid)) for instance in batch]
                opening = asyncio.create_task(
                    asyncio.to_thread(self._prepare_all, wanted, deidentification),
                    name=f"open {len(batch)} from {batch[0].sop_instance_uid}",
                )
                before = len(waiting)  # the batch before this one: sent while this opens
                waiting.extend(Outgoing(instance, opening, i) for i, instance in enumerate(batch))
                for _ in range(before):
                    # Handed over at the yield: from then on the caller's to send or discard.
                    yield waiting.popleft()
            while waiting:
                yield waiting.popleft()
        finally:
            for outgoing in waiting:
                outgoing.discard()


class Outgoing:
    """One instance on its way out, being opened in the background with its batch."""

    def __init__(
        self,
        instance: StoredInstance,
        opening: "asyncio.Task[list[Opened | TransferUnavailable]]",
        position: int = 0,
    ) -> None:
        self.instance = instance
        self._opening = opening
        self._position = position

    async def open(self) -> Opened:
        """The syntax it goes out in and its bytes; raises TransferUnavailable with the reason."""
        try:
            batch = await asyncio.shield(self._opening)
        except asyncio.CancelledError:
            self.discard()
            raise
        return _opened_or_raise(batch[self._position])

    def discard(self) -> None:
        """Release it unsent, now or once its worker thread (which cannot be interrupted) ends."""
        position = self._position

        def release(opening: "asyncio.Task[list[Opened | TransferUnavailable]]") -> None:
            if opening.cancelled() or opening.exception() is not None:
                return  # a failure would have been reported had the instance been sent
            opened = opening.result()[position]
            if not isinstance(opened, TransferUnavailable):
                opened[1].close()

        self._opening.add_done_callback(release)


def _opened_or_raise(opened: Opened | TransferUnavailable) -> Opened:
    if isinstance(opened, TransferUnavailable):
        raise opened
    return opened
