"""Element headers of an encoded data set (PS3.5 7.1, 7.5) and the completeness check on them.

The reader of element headers (tag, VR, length) from a file object: it seeks over
values, so walking a data set with a 1 GB pixel data element costs a few reads. A
data set cut short (a value or item that runs past the end, a missing delimiter) is
found before the archive acknowledges it; `pacs.dicom.part10` reads File Meta
Information with the same reader. `pacs.dicom.element_scan` makes the same walk, with
the same refusals, over bytes in memory or a mapped file for the received headers
it reads (little-endian syntaxes); this one serves the others.
"""

import struct
from typing import BinaryIO

from pacs.errors import InvalidInstance

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD
# Explicit VRs whose length field is 4 bytes after 2 reserved ones (PS3.5 Table 7.1-1).
LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)


class ElementReader:
    """Reads element headers from a file object whose encoded data set ends at byte `size`.

    Raises InvalidInstance when a header or a value runs past the end.
    """

    def __init__(self, fp: BinaryIO, size: int, implicit: bool, little: bool) -> None:
        self.fp = fp
        self.size = size
        self.implicit = implicit
        self.order = "<" if little else ">"

    def read(self, count: int) -> bytes:
        """The next `count` bytes, all of them."""
        data = self.fp.read(count)
        if len(data) != count:
            raise InvalidInstance(f"data set cut short at byte {self.fp.tell()}")
        return data

    def tag(self) -> int:
        """The next element's tag as one number, group in the high 16 bits."""
        group, element = struct.unpack(self.order + "HH", self.read(4))
        return int(group << 16 | element)

    def skip(self, length: int) -> None:
        """Seek over a value of `length` bytes."""
        self.fp.seek(self._end_of(length))

    def value(self, length: int) -> bytes:
        """Read a value of `length` bytes."""
        self._end_of(length)
        return self.read(length)

    def _end_of(self, length: int) -> int:
        end = self.fp.tell() + length
        if end > self.size:
            raise InvalidInstance(
                f"a value runs {end - self.size} bytes past the end of the data set"
            )
        return end

    def length_of(self, tag: int) -> int:
        """The value length after `tag`; reads the VR first in explicit VR syntaxes."""
        if self.implicit or tag >> 16 == 0xFFFE:
            return int(struct.unpack(self.order + "L", self.read(4))[0])
        vr = self.read(2)
        if vr in LONG_VRS:
            return int(struct.unpack(self.order + "2xL", self.read(6))[0])
        return int(struct.unpack(self.order + "H", self.read(2))[0])


class _Walker(ElementReader):
    def data_set(self, until_item_end: bool) -> None:
        while until_item_end or self.fp.tell() < self.size:
            tag = self.tag()
            length = self.length_of(tag)
            if tag == ITEM_END and until_item_end:
                return
            if length == UNDEFINED:
                self.items()
            else:
                self.skip(length)

    def items(self) -> None:
        while True:
            tag = self.tag()
            length = int(struct.unpack(self.order + "L", self.read(4))[0])
            if tag == SEQUENCE_END:
                return
            if tag != ITEM:
                raise InvalidInstance(f"expected an item in a sequence, found tag {tag:08X}")
            if length == UNDEFINED:
                self.data_set(until_item_end=True)
            else:
                self.skip(length)


def check_complete(fp: BinaryIO, offset: int, implicit: bool, little: bool) -> None:
    """Raise InvalidInstance unless the data set from `offset` to the end is whole."""
    size = fp.seek(0, 2)
    fp.seek(offset)
    _Walker(fp, size, implicit, little).data_set(until_item_end=False)
