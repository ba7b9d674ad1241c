"""A stored object read as a file: its first chunk on opening, then one ranged GET per read.

Memory stays flat whatever the object's size: a read asks for at most the bytes it
returns (and at most RANGE_BYTES). Seeking costs nothing; the size is known from the
first GET, so `seek(0, SEEK_END)` needs no request. Blocking, like the store.
"""

import io
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import S3Store

from pacs.store.s3_client import read_error

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

FIRST_BYTES = 1 << 20  # read on opening: a whole small blob, and any File Meta Information
RANGE_BYTES = 4 << 20  # one ranged GET at most


class ObjectReader(io.RawIOBase):
    """A read-only, seekable view of one object; FileNotFoundError when it is absent."""

    def __init__(self, store: S3Store, key: str) -> None:
        super().__init__()
        self._store = store
        self._key = key
        try:
            result = obstore.get(store, key, options={"range": (0, FIRST_BYTES)})
            self._size = int(result.meta["size"])
            self._first = memoryview(result.bytes())
        except (FileNotFoundError, NotFoundError):
            raise FileNotFoundError(f"no object {key}") from None
        except BaseError as exc:
            raise read_error(f"read {key}", exc) from exc
        self._position = 0

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: "WriteableBuffer") -> int:
        target = memoryview(buffer).cast("B")
        start = self._position
        wanted = min(len(target), self._size - start)
        if wanted <= 0:
            return 0
        if start < len(self._first):
            count = min(wanted, len(self._first) - start)
            target[:count] = self._first[start : start + count]
        else:
            count = min(wanted, RANGE_BYTES)
            target[:count] = self._fetch(start, count)
        self._position += count
        return count

    def _fetch(self, start: int, length: int) -> memoryview:
        try:
            got = memoryview(obstore.get_range(self._store, self._key, start=start, length=length))
        except (FileNotFoundError, NotFoundError) as exc:
            raise read_error(f"read {self._key} (removed while it was read)", exc) from exc
        except BaseError as exc:
            raise read_error(f"read {self._key} at byte {start}", exc) from exc
        if len(got) != length:
            raise OSError(f"object {self._key}: {len(got)} bytes at {start}, {length} asked")
        return got

    def close(self) -> None:
        self._first = memoryview(b"")
        super().close()


def open_object(store: S3Store, key: str, buffer_size: int = FIRST_BYTES) -> io.BufferedReader:
    """A stored object open for reading from its start (buffered: reads return what they ask)."""
    return io.BufferedReader(ObjectReader(store, key), buffer_size)
