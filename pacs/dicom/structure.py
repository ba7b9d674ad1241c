"""Check that an encoded data set is complete without reading its values (PS3.5 7.1, 7.5).

Walks the element headers, seeking over values, so a 1 GB pixel data element
costs a few reads. A data set cut short (a value or item that runs past the
end, a missing delimiter) is found before the archive acknowledges it.
"""

import struct
from typing import BinaryIO

from pacs.errors import InvalidInstance

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD
# Explicit VRs whose length field is 4 bytes after 2 reserved ones (PS3.5 Table 7.1-1).
LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}


class _Walker:
    def __init__(self, fp: BinaryIO, size: int, implicit: bool, little: bool) -> None:
        self.fp = fp
        self.size = size
        self.implicit = implicit
        self.order = "<" if little else ">"

    def read(self, count: int) -> bytes:
        data = self.fp.read(count)
        if len(data) != count:
            raise InvalidInstance(f"data set cut short at byte {self.fp.tell()}")
        return data

    def tag(self) -> int:
        group, element = struct.unpack(self.order + "HH", self.read(4))
        return int(group << 16 | element)

    def skip(self, length: int) -> None:
        end = self.fp.tell() + length
        if end > self.size:
            raise InvalidInstance(
                f"a value runs {end - self.size} bytes past the end of the data set"
            )
        self.fp.seek(end)

    def length_of(self, tag: int) -> int:
        if self.implicit or tag >> 16 == 0xFFFE:
            return int(struct.unpack(self.order + "L", self.read(4))[0])
        vr = self.read(2)
        if vr in LONG_VRS:
            return int(struct.unpack(self.order + "2xL", self.read(6))[0])
        return int(struct.unpack(self.order + "H", self.read(2))[0])

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
