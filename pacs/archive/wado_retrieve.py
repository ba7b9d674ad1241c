"""WADO-RS instance retrieve: each instance a Part 10 file, as stored or converted.

With `*` (or the stored syntax) among the syntaxes the client takes, an instance is its
stored file's bytes, streamed a chunk at a time and never parsed; otherwise the first
syntax it takes that `pacs.codec` can convert to, behind a File Meta Information naming
it. Whether every instance can go out is decided before the first byte, from the
index's (SOP Class, stored syntax) pairs, so a refusal is a status, not a broken body.
Memory stays flat: one chunk of the file being sent, and the next file's first chunk
read while it goes (a converted instance is whole in memory, as it must be).
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from pacs.archive.retrieve import RetrieveService
from pacs.codec import transcode
from pacs.dicom.part10 import file_meta_bytes
from pacs.dicom.selection import Selection
from pacs.errors import ResourceNotFound, TransferUnavailable
from pacs.index.locate import StoredInstance
from pacs.store.protocol import BlobStore

AS_STORED = "*"
CHUNK = 1024 * 1024
# Instances listed up front (a few hundred bytes each) so that a response of as many as
# this has a Content-Length; a larger one streams chunked, its list read a page at a time.
LISTED = 20_000


def choose_syntax(stored: str, accepted: Sequence[str]) -> str | None:
    """The syntax an instance stored in `stored` goes out in, from `accepted` (best
    first; `*` is as stored); None when none of them can be made here."""
    for wanted in accepted:
        if wanted in (AS_STORED, stored):
            return stored
        if transcode.can_convert(stored, wanted):
            return wanted
    return None


@dataclass(slots=True)
class Opened:
    """An instance ready to go: its syntax, its first bytes and the file for the rest."""

    transfer_syntax_uid: str
    first: bytes
    rest: BinaryIO | None


@dataclass(frozen=True, slots=True)
class Part:
    """One instance of the response: the syntax it is in and its bytes, a chunk at a time."""

    instance: StoredInstance
    transfer_syntax_uid: str
    chunks: AsyncIterator[bytes]


class InstanceStreams:
    """The Part 10 files of a study, series or instance, one after the other."""

    def __init__(self, retrieve: RetrieveService, store: BlobStore) -> None:
        self._retrieve = retrieve
        self._store = store

    async def check(self, selection: Selection, accepted: Sequence[str]) -> int:
        """How many instances will go; ResourceNotFound for none, TransferUnavailable when
        some instance cannot go in any syntax of `accepted`."""
        count, pairs = await self._retrieve.summary(selection)
        if not count:
            raise ResourceNotFound("no stored instance matches the request")
        for sop_class, stored in sorted(pairs):
            if choose_syntax(stored, accepted) is None:
                raise TransferUnavailable(
                    f"instances of {sop_class} are stored as {stored} and cannot be sent "
                    f"in {', '.join(accepted)}"
                )
        return count

    async def listed(self, selection: Selection, count: int) -> list[StoredInstance] | None:
        """The instances, read from the index at once when there are at most LISTED, so
        that the response's length can be told before it starts (None when more)."""
        if count > LISTED:
            return None
        return [instance async for instance in self._retrieve.instances(selection)]

    @staticmethod
    def stored_sizes(
        instances: Sequence[StoredInstance], accepted: Sequence[str]
    ) -> list[tuple[str, int]] | None:
        """Each instance's (syntax, size) when every one goes as stored; None when some
        instance is converted (its size is known once it is)."""
        sizes = []
        for instance in instances:
            if (
                choose_syntax(instance.transfer_syntax_uid, accepted)
                != instance.transfer_syntax_uid
            ):
                return None
            sizes.append((instance.transfer_syntax_uid, instance.blob_size))
        return sizes

    def _open(self, instance: StoredInstance, accepted: Sequence[str]) -> Opened:
        """Blocking: the instance's first chunk (or whole converted file), in a thread."""
        syntax = choose_syntax(instance.transfer_syntax_uid, accepted)
        if syntax is None:
            raise TransferUnavailable(f"{instance.sop_instance_uid} cannot be sent as asked")
        stream = self._store.open(instance.blob_sha256)
        if syntax == instance.transfer_syntax_uid:
            first = stream.read(CHUNK)
            if len(first) < CHUNK:
                stream.close()
                return Opened(syntax, first, None)
            return Opened(syntax, first, stream)
        with stream:
            try:
                data_set = transcode.convert(stream, syntax)
            except transcode.ConversionUnavailable as exc:
                raise TransferUnavailable(f"{instance.sop_instance_uid}: {exc}") from exc
        meta = file_meta_bytes(instance.sop_class_uid, instance.sop_instance_uid, syntax, "")
        return Opened(syntax, meta + data_set, None)

    async def parts(
        self, selection: Selection | Sequence[StoredInstance], accepted: Sequence[str]
    ) -> AsyncIterator[Part]:
        """Each instance (of the selection, read a page at a time, or listed already) in
        turn; the next one is opened while the caller sends this one."""
        ahead: asyncio.Task[Opened] | None = None
        pending: StoredInstance | None = None
        try:
            async for instance in self._each(selection):
                task = asyncio.create_task(asyncio.to_thread(self._open, instance, accepted))
                previous, sending = ahead, pending
                ahead, pending = task, instance  # from here on, released by `finally`
                if previous is not None and sending is not None:
                    yield self._part(sending, await previous)
            if ahead is not None and pending is not None:
                opened, ahead = await ahead, None
                yield self._part(pending, opened)
        finally:
            if ahead is not None:
                ahead.add_done_callback(_close_unsent)

    async def _each(
        self, selection: Selection | Sequence[StoredInstance]
    ) -> AsyncIterator[StoredInstance]:
        if isinstance(selection, Selection):
            async for instance in self._retrieve.instances(selection):
                yield instance
        else:
            for instance in selection:
                yield instance

    def _part(self, instance: StoredInstance, opened: Opened) -> Part:
        return Part(instance, opened.transfer_syntax_uid, _chunks(opened))


async def _chunks(opened: Opened) -> AsyncIterator[bytes]:
    try:
        chunk = opened.first
        while chunk:
            yield chunk
            rest = opened.rest
            chunk = await asyncio.to_thread(rest.read, CHUNK) if rest is not None else b""
    finally:
        if opened.rest is not None:
            opened.rest.close()


def _close_unsent(task: "asyncio.Task[Opened]") -> None:
    if task.cancelled() or task.exception() is not None:
        return
    rest = task.result().rest
    if rest is not None:
        rest.close()
