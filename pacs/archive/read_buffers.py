"""Buffers that retrieve reads large stored files into, recycled once their bytes are sent.

A fresh buffer of half a megabyte per CT instance cost about 120 page faults: the
allocator hands blocks that large back to the kernel when they are freed, and the
kernel zeroes every page of the next one as it is first touched. Reusing a few
buffers keeps those pages mapped. A buffer goes back only when the sender says
that no one holds its bytes any more (see `DataSetBytes.recycle`).
"""

from collections import deque

# Files of at least this many bytes are read into a pooled buffer; smaller ones come
# from the allocator's own free lists, which keep their pages.
POOLED_FROM = 256 * 1024
KEPT = 8  # buffers kept for reuse at most, across all retrieves


class BufferPool:
    """Buffers of one size, taken in worker threads and given back on the event loop
    (deque's append and pop are atomic)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free: deque[bytearray] = deque()

    def take(self) -> bytearray:
        """A buffer of `size` bytes, reused if one is free (its old bytes still in it)."""
        try:
            return self._free.pop()
        except IndexError:
            return bytearray(self.size)

    def give(self, buffer: bytearray) -> None:
        """Take a buffer back; nothing may read or write it any more."""
        if len(self._free) < KEPT:
            self._free.append(buffer)
