"""Staging files: where a blob's bytes go before they are committed to their address.

A blob starts in a file of its own in the staging directory. Creating a file changes
the directory, and on a journalling filesystem that can wait for the journal commit of
a blob stored just before; opening a file that already exists does not. So staging
files can be created ahead of need (`make_spares`, run by the store thread that has
just committed a blob), and a new blob takes one of those when there is one.
"""

import contextlib
import io
import itertools
import os
import secrets
import threading
from pathlib import Path
from typing import BinaryIO

PART_SUFFIX = ".part"
# A spare keeps its name when it is taken: renaming it would change the directory,
# which is what making it ahead avoids. An empty one is one nothing has used.
SPARE_SUFFIX = ".spare"
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
# Python's usual buffer, given rather than chosen: choosing asks the OS whether the file
# is a terminal.
_BUFFER_BYTES = io.DEFAULT_BUFFER_SIZE


def is_unused_spare(name: str, size: int) -> bool:
    """Whether a staging file is a spare made ahead and never written: no leftover."""
    return name.endswith(SPARE_SUFFIX) and size == 0


class StagingFiles:
    """Makes staging files in one directory, keeping up to `spares` made ahead; thread-safe.

    Spares are closed until taken; `close()` removes those left. OSError from the
    filesystem reaches the caller of `create()`; a spare that cannot be made or opened
    is simply not used.
    """

    def __init__(self, directory: Path, spares: int = 0) -> None:
        self.directory = directory
        self.spares = spares
        self._made: list[Path] = []
        self._lock = threading.Lock()
        self._closed = False
        # Names unique among processes sharing the directory and across restarts, without
        # asking the OS for randomness for each file.
        self._prefix = os.path.join(directory, secrets.token_hex(8) + "-")
        self._numbers = itertools.count()

    def create(self) -> tuple[Path, BinaryIO]:
        """A new staging file, open for writing: a spare when there is one."""
        spare = self._take_spare()
        if spare is not None:
            return spare
        path = self._new_path()
        return path, open(os.open(path, _NEW_FILE, 0o644), "wb", buffering=_BUFFER_BYTES)

    def _new_path(self, suffix: str = PART_SUFFIX) -> Path:
        return Path(f"{self._prefix}{next(self._numbers)}{suffix}")

    def _take_spare(self) -> tuple[Path, BinaryIO] | None:
        with self._lock:
            if not self._made:
                return None
            path = self._made.pop()
        try:
            # By descriptor, write-only, not truncated (that would change the file's times):
            # a plain buffered writer, as "xb" gives.
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            return path, open(fd, "wb", buffering=_BUFFER_BYTES)
        except FileNotFoundError:
            # The directory was removed behind pacs's back, spare files and all.
            self._remove_spares()
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        return None

    def make_spares(self) -> None:
        """Create staging files until `spares` are ready (blocking; off the request's path)."""
        while True:
            with self._lock:
                if self._closed or len(self._made) >= self.spares:
                    return
            path = self._new_path(SPARE_SUFFIX)
            try:
                os.close(os.open(path, _NEW_FILE, 0o644))
            except OSError:
                return  # met again, and reported, by whoever needs a file
            with self._lock:
                if not self._closed:
                    self._made.append(path)
                    continue
            path.unlink(missing_ok=True)
            return

    def close(self) -> None:
        """Remove the spares and make no more; call once nothing makes them any longer."""
        with self._lock:
            self._closed = True
        self._remove_spares()

    def _remove_spares(self) -> None:
        with self._lock:
            made, self._made = self._made, []
        for path in made:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
