"""One pass over a little-endian data set held in a buffer: completeness and its top level.

The same walk as `pacs.dicom.structure.check_complete` (same refusals, same messages),
over bytes in memory or a mapped file instead of a file object, and it notes where
each top-level element before the pixel data sits, so the header's values can be
read without parsing the data set again.
"""

import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from pacs.dicom.structure import ITEM, ITEM_END, LONG_VRS, SEQUENCE_END, UNDEFINED
from pacs.errors import InvalidInstance

Buffer = bytes | memoryview | mmap.mmap
PIXEL_DATA_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_TAG = struct.Struct("<HH")
_LONG = struct.Struct("<L")
_SHORT_HEADER = struct.Struct("<HH2sH")  # tag, VR, 2-byte length
_VR_NAMES = "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI"
# Every VR pydicom knows, as encoded and as named.
KNOWN_VRS = {vr.encode(): vr for vr in f"{_VR_NAMES} UL UN UR US UT UV".split(" ")}


# Where one top-level element is: (VR, value start, value length, element start, element
# end). The VR is None in implicit VR; the length is UNDEFINED for a delimited value, whose
# end is after its delimiter. A plain tuple: one is made per element of every header.
Element = tuple[bytes | None, int, int, int, int]


@dataclass(slots=True)
class TopLevel:
    """The top-level elements before the pixel data, by tag (the last of a repeated tag)."""

    elements: dict[int, Element] = field(default_factory=dict)
    ascending: bool = True
    # The first top-level pixel data element and its tag (0 when there is none).
    pixels: Element | None = None
    pixel_tag: int = 0


def _cut_short(size: int) -> InvalidInstance:
    # ElementReader's file object stands at the end after a short read.
    return InvalidInstance(f"data set cut short at byte {size}")


class _Scanner:
    def __init__(self, buf: Buffer, implicit: bool) -> None:
        self.buf = buf
        self.size = len(buf)
        self.implicit = implicit

    def header(self, pos: int) -> tuple[int, bytes | None, int, int]:
        """Tag, VR, value length and where the value starts, of the element at `pos`."""
        buf, size = self.buf, self.size
        if pos + 8 <= size and not self.implicit:
            group, number, vr, length = _SHORT_HEADER.unpack_from(buf, pos)
            tag = group << 16 | number
            if group == 0xFFFE:
                return tag, None, _LONG.unpack_from(buf, pos + 4)[0], pos + 8
            if vr in LONG_VRS:
                if pos + 12 > size:
                    raise _cut_short(size)
                return tag, vr, _LONG.unpack_from(buf, pos + 8)[0], pos + 12
            return tag, vr, length, pos + 8
        if pos + 4 > size:
            raise _cut_short(size)
        group, number = _TAG.unpack_from(buf, pos)
        tag = group << 16 | number
        if self.implicit or group == 0xFFFE:
            if pos + 8 > size:
                raise _cut_short(size)
            return tag, None, _LONG.unpack_from(buf, pos + 4)[0], pos + 8
        raise _cut_short(size)  # explicit VR, fewer than 8 bytes left

    def skip(self, pos: int, length: int) -> int:
        end = pos + length
        if end > self.size:
            raise InvalidInstance(
                f"a value runs {end - self.size} bytes past the end of the data set"
            )
        return end

    def top_level(self, pos: int) -> TopLevel:
        found = TopLevel()
        elements = found.elements
        buf, size, explicit = self.buf, self.size, not self.implicit
        collecting, previous = True, -1
        while pos < size:
            # The common element header read in line: this loop runs for every element.
            if explicit and pos + 8 <= size:
                group, number, vr, length = _SHORT_HEADER.unpack_from(buf, pos)
                tag = group << 16 | number
                if group == 0xFFFE or vr in LONG_VRS:
                    tag, vr, length, start = self.header(pos)
                else:
                    start = pos + 8
            else:
                tag, vr, length, start = self.header(pos)
            head = pos
            if length == UNDEFINED:
                pos = self.items(start)
            else:
                pos = start + length
                if pos > size:
                    raise InvalidInstance(
                        f"a value runs {pos - size} bytes past the end of the data set"
                    )
            if collecting:
                if tag in PIXEL_DATA_TAGS:
                    collecting = False
                    found.pixels, found.pixel_tag = (vr, start, length, head, pos), tag
                else:
                    found.ascending = found.ascending and tag > previous
                    previous = tag
                    elements[tag] = (vr, start, length, head, pos)
        return found

    def item(self, pos: int) -> int:
        """Walk an item of undefined length; where its delimiter ends."""
        while True:
            tag, _vr, length, start = self.header(pos)
            if tag == ITEM_END:
                return start
            pos = self.items(start) if length == UNDEFINED else self.skip(start, length)

    def items(self, pos: int) -> int:
        """Walk a delimited sequence's items; where its delimiter ends."""
        size = self.size
        while True:
            if pos + 8 > size:
                raise _cut_short(size)
            group, number = _TAG.unpack_from(self.buf, pos)
            tag = group << 16 | number
            length = _LONG.unpack_from(self.buf, pos + 4)[0]
            pos += 8
            if tag == SEQUENCE_END:
                return pos
            if tag != ITEM:
                raise InvalidInstance(f"expected an item in a sequence, found tag {tag:08X}")
            pos = self.item(pos) if length == UNDEFINED else self.skip(pos, length)


class _Collector(_Scanner):
    """The tags and VRs of the elements nested in a sequence."""

    def __init__(self, buf: Buffer, implicit: bool, is_sequence: Callable[[int], bool]) -> None:
        super().__init__(buf, implicit)
        self.is_sequence = is_sequence
        self.tags: set[int] = set()
        self.vrs: set[bytes | None] = set()

    def data_set(self, pos: int, stop: int | None) -> int:
        """Walk an item's elements up to `stop`, or to its delimiter when None."""
        while stop is None or pos < stop:
            tag, vr, length, start = self.header(pos)
            if tag == ITEM_END and stop is None:
                return start
            self.tags.add(tag)
            self.vrs.add(vr)
            if vr == b"SQ" or (vr is None and self.is_sequence(tag)):
                pos = self.sequence(start, None if length == UNDEFINED else start + length)
            elif length == UNDEFINED:
                pos = self.items(start)  # encapsulated fragments, not data sets
            else:
                pos = self.skip(start, length)
        return pos

    def sequence(self, pos: int, stop: int | None) -> int:
        """Walk a sequence's items up to `stop`, or to its delimiter when None."""
        while stop is None or pos < stop:
            tag, _vr, length, start = self.header(pos)
            if tag == SEQUENCE_END and stop is None:
                return start
            if tag != ITEM:
                raise InvalidInstance(f"expected an item in a sequence, found tag {tag:08X}")
            if length == UNDEFINED:
                pos = self.data_set(start, None)
            else:
                self.data_set(start, start + length)
                pos = self.skip(start, length)
        return pos


def nested(
    buf: Buffer, element: Element, implicit: bool, is_sequence: Callable[[int], bool]
) -> tuple[set[int], set[bytes | None]]:
    """The tags and VRs (None in implicit VR) found inside a top-level sequence;
    `is_sequence` says which implicit VR elements are sequences."""
    _vr, start, length, _head, end = element
    collector = _Collector(buf, implicit, is_sequence)
    collector.sequence(start, None if length == UNDEFINED else end)
    return collector.tags, collector.vrs


def scan(buf: Buffer, start: int, implicit: bool) -> TopLevel:
    """Raise InvalidInstance unless the data set from `start` to the buffer's end is whole;
    return its top-level elements before the pixel data."""
    return _Scanner(buf, implicit).top_level(start)
