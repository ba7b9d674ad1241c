"""The parts of a STOW-RS body: each a Part 10 file, read as its File Meta Information
followed by its data set's bytes, streamed in chunks (a part is never held whole).

Ingest writes its own File Meta Information in front of the data set, as for C-STORE,
so the data set's bytes are stored exactly as sent. The meta group is found by walking
its elements rather than trusting (0002,0000): some clients (dicomweb-client with
pydicom's defaults) send it without the preamble, "DICM" or the group length.
"""

import asyncio
import io
import struct
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader

from pacs.dicom.part10 import FileMeta, read_file_meta
from pacs.dicom.structure import LONG_VRS
from pacs.errors import InvalidInstance

CHUNK = 256 * 1024
PREFIX = 132  # preamble and "DICM"
# A File Meta Information group larger than this is not one (it holds a few UIDs).
MAX_META = 64 * 1024
_GROUP_LENGTH = b"\x02\x00\x00\x00"


def _meta_length(head: bytes | bytearray, start: int) -> int | None:
    """The bytes of group 0002 from `start`; None when `head` ends inside it."""
    position = start
    while position + 8 <= len(head):
        if head[position : position + 2] != b"\x02\x00":
            return position - start
        if bytes(head[position + 4 : position + 6]) in LONG_VRS:
            if position + 12 > len(head):
                return None
            position += 12 + struct.unpack_from("<I", head, position + 8)[0]
        else:
            position += 8 + struct.unpack_from("<H", head, position + 6)[0]
    return None


def _wrapped(elements: bytes) -> bytes:
    """A Part 10 head for read_file_meta: preamble, "DICM", group length, the elements."""
    if elements.startswith(_GROUP_LENGTH):
        elements = elements[12:]
    group_length = struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(elements))
    return b"\x00" * 128 + b"DICM" + group_length + elements


async def read_meta(part: BodyPartReader) -> tuple[FileMeta, bytes]:
    """The part's File Meta Information, and the data set bytes read past it.

    InvalidInstance when the part is not a Part 10 file naming its SOP Class and
    Instance and its transfer syntax.
    """
    head = bytearray()
    start: int | None = None
    length = None
    while length is None:
        chunk = await part.read_chunk(CHUNK)
        head += chunk
        if start is None and len(head) >= PREFIX:
            start = PREFIX if head[128:PREFIX] == b"DICM" else 0
            if head[start : start + 2] != b"\x02\x00":
                raise InvalidInstance("not a DICOM file: no File Meta Information")
        if start is not None:
            length = _meta_length(head, start)
        if length is None and (not chunk or len(head) > MAX_META):
            raise InvalidInstance("not a DICOM file: no complete File Meta Information")
    assert start is not None
    end = start + length
    try:
        meta = read_file_meta(io.BytesIO(_wrapped(bytes(head[start:end]))))
    except ValueError as exc:
        raise InvalidInstance(str(exc)) from None
    return meta, bytes(head[end:])


async def data_set(first: bytes, part: BodyPartReader, read: asyncio.Event) -> AsyncIterator[bytes]:
    """The data set's bytes: those already read, then the rest of the part chunk by chunk;
    `read` is set once the last has been read (the body's next part may then be read)."""
    if first:
        yield first
    while chunk := await part.read_chunk(CHUNK):
        yield chunk
    read.set()
