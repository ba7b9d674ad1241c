"""Retrieve: the instances a C-MOVE or C-GET names, each as bytes in a syntax the receiver took.

An instance goes out as stored (its data set bytes streamed from the file,
never decoded) whenever the receiver accepted the stored transfer syntax;
otherwise it is converted by `pacs.codec`, or fails with the reason.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import BinaryIO, Protocol, TypeAlias

from pacs.archive.deidentification import Deidentification
from pacs.codec import transcode
from pacs.dicom.part10 import seek_data_set
from pacs.dicom.selection import Selection
from pacs.errors import TransferUnavailable
from pacs.index.locate import StoredInstance
from pacs.store.protocol import BlobStore

log = logging.getLogger(__name__)

# What retrieve hands net for each instance it sends (Outgoing.instance): the index's row,
# under the archive's name, so that net imports nothing from the index.
RetrievableInstance: TypeAlias = StoredInstance

CHUNK = 1024 * 1024  # bytes read from a stored file per worker-thread hop


class InstanceSource(Protocol):
    async def summary(self, selection: Selection) -> tuple[int, set[tuple[str, str]]]: ...

    def locate(
        self, selection: Selection, page_size: int = 500
    ) -> AsyncIterator[list[StoredInstance]]: ...


class DataSetBytes:
    """An instance's data set bytes on their way out: the first chunk is read on opening,
    the rest on demand, so opening the next instance can overlap sending this one."""

    def __init__(self, first: bytes, rest: BinaryIO | None = None) -> None:
        self._first = first
        self._rest = rest
        self.sent = 0  # bytes handed out by chunks() so far
        # The SOP Instance UID the bytes carry when it is not the stored one (de-identified).
        self.sop_instance_uid: str | None = None

    @classmethod
    def read_stored(cls, stream: BinaryIO) -> "DataSetBytes":
        """Read a stored file's first chunk of data set bytes, taking the open file over: it
        stays open only if there is more. Blocking: callers run it in a worker thread."""
        try:
            seek_data_set(stream)
            first = stream.read(CHUNK)
        except BaseException:
            stream.close()
            raise
        if len(first) < CHUNK:
            stream.close()
            return cls(first)
        return cls(first, stream)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes in chunks of at most CHUNK; the file is closed at the end."""
        try:
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
    """Plans retrieves and opens instances for transfer, one at a time with one read ahead."""

    def __init__(self, source: InstanceSource, store: BlobStore) -> None:
        self._source = source
        self._store = store

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
        uid, sha256 = instance.sop_instance_uid, instance.blob_sha256
        try:
            return await asyncio.to_thread(self._prepare, instance, accepted, deidentification)
        except FileNotFoundError:
            raise TransferUnavailable(
                f"{uid}: its file {self._store.location(sha256)} is missing"
            ) from None
        except (OSError, ValueError) as exc:
            raise TransferUnavailable(
                f"{uid}: its file {self._store.location(sha256)} cannot be read: {exc}"
            ) from exc
        except transcode.ConversionUnavailable as exc:
            raise TransferUnavailable(f"{uid}: {exc}") from exc

    def _prepare(
        self,
        instance: StoredInstance,
        accepted: Sequence[str],
        deidentification: Deidentification | None,
    ) -> Opened:
        """`open` in a worker thread: the stored bytes (de-identified when asked), or the
        converted ones."""
        stream = self._store.open(instance.blob_sha256)
        if deidentification is None:
            return self._encode(instance, stream, accepted)
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
            return instance.transfer_syntax_uid, DataSetBytes.read_stored(stream)
        with stream:
            for target in accepted:
                if transcode.can_convert(instance.transfer_syntax_uid, target):
                    return target, DataSetBytes(transcode.convert(stream, target))
        raise TransferUnavailable(
            f"{instance.sop_instance_uid}: stored as {instance.transfer_syntax_uid}, the receiver "
            f"accepted {', '.join(accepted) or 'nothing'} for {instance.sop_class_uid}, "
            "and no conversion between them exists"
        )

    async def read_ahead(
        self,
        selection: Selection,
        accepted: Callable[[str], Sequence[str]],
        deidentification: Deidentification | None = None,
    ) -> AsyncGenerator["Outgoing", None]:
        """The instances to send, each being opened (see `open`) while the one before it is
        sent: reading a file, or converting it, overlaps the receiver's work.

        `accepted` gives the syntaxes the receiver took for a SOP Class. At most two
        instances are open at a time; the caller sends or discards each it is given.
        With `deidentification`, each goes out de-identified (see its `rewrite`).
        """
        ahead: Outgoing | None = None
        try:
            async for instance in self.instances(selection):
                opening = asyncio.create_task(
                    self.open(instance, accepted(instance.sop_class_uid), deidentification),
                    name=f"open {instance.sop_instance_uid}",
                )
                # The one being opened is `ahead` before the yield: if the caller stops
                # there, the finally below releases it.
                current, ahead = ahead, Outgoing(instance, opening)
                if current is not None:
                    yield current
            if ahead is not None:
                last, ahead = ahead, None
                yield last
        finally:
            if ahead is not None:
                ahead.discard()


class Outgoing:
    """One instance on its way out, being opened in the background."""

    def __init__(self, instance: StoredInstance, opening: "asyncio.Task[Opened]") -> None:
        self.instance = instance
        self._opening = opening

    async def open(self) -> Opened:
        """The syntax it goes out in and its bytes; raises TransferUnavailable with the reason."""
        try:
            return await asyncio.shield(self._opening)
        except asyncio.CancelledError:
            self.discard()
            raise

    def discard(self) -> None:
        """Release it unsent, now or once its worker thread (which cannot be interrupted) ends."""
        self._opening.add_done_callback(_release)


def _release(opening: "asyncio.Task[Opened]") -> None:
    if opening.cancelled() or opening.exception() is not None:
        return  # a failure would have been reported had the instance been sent
    opening.result()[1].close()
