"""WADO-RS frames and bulk data: bytes read by offset from the stored file, never parsed.

A frame's place in its file was noted at ingest (`pacs.dicom.pixel_layout`, kept in
the index); an instance indexed without it (a reindexed file, one stored before the
layout was kept) has it found on the first request, by the same walk over the mapped
file, and kept. A native frame is one byte range; an encapsulated frame is the values of
its fragments, sent as stored in the stored syntax, or decoded when the client asks for
native bytes. A request reads, and decodes, only the frames it names.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from pacs.codec.decoders import decode_frame
from pacs.codec.errors import ConversionUnavailable
from pacs.dicom.frames import FrameUnavailable, NoSuchFrame, frame_ranges, geometry
from pacs.dicom.pixel_layout import Layout, layout_of_file
from pacs.errors import ResourceNotFound, TransferUnavailable
from pacs.index.wado import FrameSource, WadoCatalogue
from pacs.store.protocol import BlobStore

log = logging.getLogger(__name__)

AS_STORED = "*"
IMAGE_PIXEL = (
    *("00280002", "00280004", "00280006", "00280010", "00280011"),
    *("00280100", "00280101", "00280102", "00280103"),
)


class InstanceNotFound(ResourceNotFound):
    """No such instance in that study and series."""


@dataclass(frozen=True, slots=True)
class FrameReply:
    """Frames on their way out: the syntax they are in and their bytes, one frame each."""

    transfer_syntax_uid: str
    frames: AsyncIterator[bytes]


def _read_ranges(stream: BinaryIO, ranges: Sequence[tuple[int, int]]) -> bytes:
    parts = []
    for offset, length in ranges:
        stream.seek(offset)
        part = stream.read(length)
        if len(part) != length:
            raise FrameUnavailable(f"the file ends {length - len(part)} bytes into a frame")
        parts.append(part)
    return b"".join(parts)


def _image(attributes: dict[str, Any]) -> Dataset:
    return Dataset.from_json({key: attributes[key] for key in IMAGE_PIXEL if key in attributes})


def choose_frame_syntax(stored: str, accepted: Sequence[str]) -> str | None:
    """The syntax frames of a `stored` instance go out in, from the client's `accepted`
    (best first; `*` is as stored); None when none of them can be made here."""
    encapsulated = UID(stored).is_encapsulated
    for wanted in accepted:
        if wanted in (AS_STORED, stored):
            return ExplicitVRLittleEndian if not encapsulated and wanted == AS_STORED else stored
        if wanted == ExplicitVRLittleEndian:
            return wanted  # native frames are the same bytes; encapsulated ones are decoded
    return None


class FrameService:
    """Frames and bulk data of stored instances."""

    def __init__(self, catalogue: WadoCatalogue, store: BlobStore) -> None:
        self._catalogue = catalogue
        self._store = store

    async def _source(self, study: str, series: str, sop: str) -> tuple[FrameSource, Layout]:
        source = await self._catalogue.frame_source(study, series, sop)
        if source is None:
            raise InstanceNotFound(f"no instance {sop} in series {series} of study {study}")
        layout = source.pixel_layout
        if layout is None:
            layout = await asyncio.to_thread(self._find_layout, source.blob_sha256)
            if layout is None:
                raise FrameUnavailable(
                    f"{sop}: frames of {source.transfer_syntax_uid} are not read by offset"
                )
            await self._catalogue.note_layout(sop, source.blob_sha256, layout)
        return source, layout

    def _find_layout(self, sha256: str) -> Layout | None:
        with self._store.open(sha256) as stream:
            return layout_of_file(stream)

    async def frames(
        self, study: str, series: str, sop: str, numbers: Sequence[int], accepted: Sequence[str]
    ) -> FrameReply:
        """The frames `numbers` of an instance, in a syntax from `accepted`. Raises
        NoSuchFrame, FrameUnavailable or TransferUnavailable before any byte is read."""
        source, layout = await self._source(study, series, sop)
        stored = source.transfer_syntax_uid
        syntax = choose_frame_syntax(stored, accepted)
        if syntax is None:
            raise TransferUnavailable(
                f"{sop}: stored as {stored}; its frames cannot be sent in {', '.join(accepted)}"
            )
        image = geometry(source.attributes)
        ranges = [frame_ranges(layout, number, image) for number in numbers]
        decode = UID(stored).is_encapsulated and syntax != stored
        return FrameReply(syntax, self._read(source, ranges, decode))

    async def _read(
        self, source: FrameSource, ranges: list[list[tuple[int, int]]], decode: bool
    ) -> AsyncIterator[bytes]:
        stream = await asyncio.to_thread(self._store.open, source.blob_sha256)
        try:
            for frame in ranges:
                if decode:
                    yield await asyncio.to_thread(self._decoded, stream, frame, source)
                else:
                    yield await asyncio.to_thread(_read_ranges, stream, frame)
        finally:
            stream.close()

    def _decoded(
        self, stream: BinaryIO, frame: list[tuple[int, int]], source: FrameSource
    ) -> bytes:
        encoded = _read_ranges(stream, frame)
        try:
            return decode_frame(_image(source.attributes), encoded, source.transfer_syntax_uid)
        except ConversionUnavailable as exc:
            raise TransferUnavailable(f"{source.sop_instance_uid}: {exc}") from exc

    async def bulk_value(self, study: str, series: str, sop: str, tag: int) -> bytes | FrameReply:
        """A bulk data value as stored; the pixel data of an encapsulated instance as its
        frames in the stored syntax (a FrameReply)."""
        source, layout = await self._source(study, series, sop)
        pixels = layout.get("pixels")
        if pixels is not None and pixels["tag"] == tag:
            if "frames" in pixels:
                count = len(pixels["frames"] or ())
                numbers = list(range(1, count + 1))
                return await self.frames(study, series, sop, numbers, [AS_STORED])
            ranges = [(int(pixels["offset"]), int(pixels["length"]))]
        else:
            found = [(offset, length) for t, _vr, offset, length in layout["bulk"] if t == tag]
            if not found:
                raise NoSuchFrame(f"{sop} has no bulk data value {tag:08X}")
            ranges = found[:1]
        with await asyncio.to_thread(self._store.open, source.blob_sha256) as stream:
            return await asyncio.to_thread(_read_ranges, stream, ranges)
