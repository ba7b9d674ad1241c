"""Where a stored instance's bulk data and frames lie in its file, from the header walk.

Ingest walks every element header of a little-endian data set anyway (`element_scan`);
noting where the large binary values and the pixel data sit, and for encapsulated pixel
data where each frame's fragments are, costs one more look per fragment item header and
lets DICOMweb read a frame or a bulk value by byte offset, never parsing the file again.

The layout is plain JSON (kept in the index beside the instance):
`{"bulk": [[tag, vr, offset, length], ...], "pixels": {"tag", "vr", "offset", "length",
"frames"}}`, offsets from the start of the Part 10 file. `frames` is present for
encapsulated pixel data only: per frame, the `[offset, length]` of its fragments' values.
"""

import mmap
import struct
from typing import Any, BinaryIO

from pydicom.uid import UID

from pacs.dicom.element_scan import Buffer, Element, TopLevel, scan
from pacs.dicom.header import BINARY_VRS, BULK_THRESHOLD
from pacs.dicom.part10 import seek_data_set
from pacs.dicom.structure import ITEM, SEQUENCE_END, UNDEFINED
from pacs.dicom.value_json import BINARY_AMBIGUOUS, implicit_vr

Layout = dict[str, Any]
NUMBER_OF_FRAMES = 0x00280008
_ITEM_HEADER = struct.Struct("<HHL")
# The first bytes of a compressed frame's first fragment: a JPEG or JPEG-LS Start Of
# Image, a JPEG 2000 codestream's Start Of Codestream.
_FRAME_STARTS = (b"\xff\xd8", b"\xff\x4f")


def scanned_syntax(transfer_syntax: str) -> bool | None:
    """Whether the syntax is implicit VR, for the syntaxes walked here; None for others."""
    uid = UID(transfer_syntax)
    if not uid.is_little_endian or uid.is_deflated:
        return None
    return bool(uid.is_implicit_VR)


def _vr_of(tag: int, element: Element) -> str | None:
    if element[0] is not None:
        return element[0].decode("ascii", "replace")
    vr = implicit_vr(tag)
    return "OW" if vr in BINARY_AMBIGUOUS else vr


def _number_of_frames(buf: Buffer, top: TopLevel) -> int:
    element = top.elements.get(NUMBER_OF_FRAMES)
    if element is None:
        return 1
    raw = bytes(buf[element[1] : element[1] + element[2]]).strip(b"\x00 ")
    try:
        return max(int(raw.split(b"\\")[0]), 1)
    except ValueError:
        return 1


def _fragments(buf: Buffer, start: int) -> tuple[list[int], list[tuple[int, int]]]:
    """The Basic Offset Table and each fragment's (item header position, value length)."""
    pos, offsets, fragments = start, [], []
    first = True
    while pos + 8 <= len(buf):
        group, element, length = _ITEM_HEADER.unpack_from(buf, pos)
        tag = group << 16 | element
        if tag == SEQUENCE_END or tag != ITEM:
            break
        if first:
            table = bytes(buf[pos + 8 : pos + 8 + length])
            offsets = list(struct.unpack(f"<{length // 4}L", table[: length // 4 * 4]))
            first = False
        else:
            fragments.append((pos, length))
        pos += 8 + length
    return offsets, fragments


def _group(
    buf: Buffer, offsets: list[int], fragments: list[tuple[int, int]], frames: int
) -> list[list[tuple[int, int]]] | None:
    """Fragments (item position, length) per frame (PS3.5 A.4), or None when unknown."""
    if not fragments:
        return None
    if frames == 1:
        return [fragments]
    if len(offsets) == frames and fragments:
        base = fragments[0][0]
        bounds = [*offsets[1:], 1 << 62]
        grouped: list[list[tuple[int, int]]] = [[] for _ in range(frames)]
        frame = 0
        for fragment in fragments:
            while fragment[0] - base >= bounds[frame]:
                frame += 1
            grouped[frame].append(fragment)
        return grouped
    if len(fragments) == frames:
        return [[fragment] for fragment in fragments]
    starts = [
        i for i, (pos, _) in enumerate(fragments) if bytes(buf[pos + 8 : pos + 10]) in _FRAME_STARTS
    ]
    if len(starts) != frames or starts[0] != 0:
        return None
    ends = [*starts[1:], len(fragments)]
    return [fragments[a:b] for a, b in zip(starts, ends, strict=True)]


def _pixels(buf: Buffer, top: TopLevel, file_offset: int) -> dict[str, Any] | None:
    element = top.pixels
    if element is None:
        return None
    vr, start, length, _head, end = element
    found: dict[str, Any] = {
        "tag": top.pixel_tag,
        "vr": _vr_of(top.pixel_tag, element) or "OW",
        "offset": start + file_offset,
        "length": length if length != UNDEFINED else end - start,
    }
    if length == UNDEFINED:
        found["vr"] = "OB" if vr is None else found["vr"]
        offsets, fragments = _fragments(buf, start)
        grouped = _group(buf, offsets, fragments, _number_of_frames(buf, top))
        found["frames"] = None
        if grouped is not None:
            found["frames"] = [
                [[pos + 8 + file_offset, size] for pos, size in frame] for frame in grouped
            ]
    return found


def layout_from_scan(buf: Buffer, top: TopLevel, file_offset: int) -> Layout:
    """The layout of a walked data set; `file_offset` is where `buf[0]` lies in the file."""
    bulk = []
    for tag, element in top.elements.items():
        vr = _vr_of(tag, element)
        if vr in BINARY_VRS and vr != "UN" and element[2] > BULK_THRESHOLD:
            bulk.append([tag, vr, element[1] + file_offset, element[2]])
    return {"bulk": bulk, "pixels": _pixels(buf, top, file_offset)}


def layout_of_file(fp: BinaryIO) -> Layout | None:
    """The layout of a stored Part 10 file, or None when its syntax is not walked here
    (big endian, deflated). Blocking: the file is mapped, its pixel data never read."""
    syntax, offset = seek_data_set(fp)
    implicit = scanned_syntax(syntax)
    if implicit is None:
        return None
    with mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return layout_from_scan(mapped, scan(mapped, offset, implicit), 0)
