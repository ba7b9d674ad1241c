"""The minimum of free space under a store's root, checked before each blob is received.

Both backends stage under [storage] root (the filesystem store everything, S3 its staging
files), so both refuse a blob once the filesystem there has less than the minimum free.
"""

import shutil
import time
from pathlib import Path

from pacs.errors import StoreFull

INTERVAL = 1.0  # seconds a measurement is reused
MARGIN = 256 << 20  # bytes above the minimum within which every blob measures afresh


class FreeSpace:
    """Free bytes under `root` against a minimum, measured at most once a second while far
    above it. A figure up to a second old cannot hide the crossing of the minimum unless
    more than MARGIN was written meanwhile; near the minimum every blob measures."""

    def __init__(self, root: Path, minimum: int) -> None:
        self.root = root
        self.minimum = minimum
        self._measured: tuple[float, int] | None = None  # (when, bytes free)

    def bytes_free(self) -> int:
        """Bytes available to this process on the root's filesystem, measured now."""
        return shutil.disk_usage(self.root).free

    def check(self) -> None:
        """Raise StoreFull when below the minimum; OSError when the root cannot be measured."""
        now = time.monotonic()
        cached = self._measured
        if cached is not None:
            when, free = cached
            if now - when < INTERVAL and free - self.minimum >= MARGIN:
                return
        free = self.bytes_free()
        self._measured = (now, free)
        if free < self.minimum:
            raise StoreFull(f"{free} bytes free in {self.root}, {self.minimum} required")
