"""Retrieve: the instances a C-MOVE or C-GET names, each as bytes in a syntax the receiver took.

An instance goes out as stored (its data set bytes streamed from the file,
never decoded) whenever the receiver accepted the stored transfer syntax;
otherwise it is converted by `pacs.codec`, or fails with the reason.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from pacs.codec import transcode
from pacs.dicom.part10 import data_set_offset
from pacs.dicom.selection import Selection
from pacs.errors import TransferUnavailable
from pacs.index.locate import StoredInstance

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024  # bytes read from a stored file per worker-thread hop


class InstanceSource(Protocol):
    async def summary(self, selection: Selection) -> tuple[int, set[tuple[str, str]]]: ...

    def locate(
        self, selection: Selection, page_size: int = 500
    ) -> AsyncIterator[list[StoredInstance]]: ...


class BlobPaths(Protocol):
    def path_of(self, sha256: str) -> Path: ...


def _open_data_set(path: Path) -> BinaryIO:
    """Open a stored file positioned at its data set."""
    stream = path.open("rb")
    try:
        stream.seek(data_set_offset(stream.read(144)))
    except BaseException:
        stream.close()
        raise
    return stream


def _open_and_read(path: Path) -> tuple[BinaryIO, bytes]:
    stream = _open_data_set(path)
    return stream, stream.read(CHUNK)


async def _stream(path: Path) -> AsyncIterator[bytes]:
    # Opening and the first read share one worker-thread hop: most instances fit in it.
    stream, chunk = await asyncio.to_thread(_open_and_read, path)
    try:
        while chunk:
            yield chunk
            chunk = await asyncio.to_thread(stream.read, CHUNK) if len(chunk) == CHUNK else b""
    finally:
        stream.close()


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class RetrieveService:
    """Plans retrieves and opens each instance for transfer, one at a time."""

    def __init__(self, source: InstanceSource, store: BlobPaths) -> None:
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
        self, instance: StoredInstance, accepted: Sequence[str]
    ) -> tuple[str, AsyncIterator[bytes]]:
        """Pick the syntax to send in (stored if accepted) and return it with the data set bytes.

        `accepted` lists the transfer syntaxes the receiver accepted for the
        instance's SOP Class. Raises TransferUnavailable with the reason.
        """
        path = self._store.path_of(instance.blob_sha256)
        if not path.is_file():
            raise TransferUnavailable(f"{instance.sop_instance_uid}: its file {path} is missing")
        if instance.transfer_syntax_uid in accepted:
            return instance.transfer_syntax_uid, _stream(path)
        for target in accepted:
            if transcode.can_convert(instance.transfer_syntax_uid, target):
                try:
                    data = await asyncio.to_thread(transcode.convert_file, path, target)
                except transcode.ConversionUnavailable as exc:
                    raise TransferUnavailable(f"{instance.sop_instance_uid}: {exc}") from exc
                return target, _one(data)
        raise TransferUnavailable(
            f"{instance.sop_instance_uid}: stored as {instance.transfer_syntax_uid}, the receiver "
            f"accepted {', '.join(accepted) or 'nothing'} for {instance.sop_class_uid}, "
            "and no conversion between them exists"
        )
