"""A disk spool of syslog frames: appended and fsynced before sending, read back in order.

Two files in the spool directory: `messages`, the RFC 5425 frames ("LENGTH SP MESSAGE")
one after the other, and `sent`, the offset in `messages` up to which frames were
delivered. When everything is delivered, `messages` is emptied. A frame torn by a
crash (a short last frame) is cut off at the next start; it had not been acknowledged
to anyone, as the event was still queued in memory when the crash came.
"""

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def frame(message: bytes) -> bytes:
    """RFC 5425 4.3 octet-counting: the length in ASCII digits, a space, the message."""
    return b"%d %b" % (len(message), message)


def frame_ends(data: bytes) -> list[int]:
    """The offsets in `data` where whole frames end, stopping at the first incomplete one."""
    ends: list[int] = []
    position = 0
    while (space := data.find(b" ", position, position + 12)) > position:
        digits = data[position:space]
        if not digits.isdigit():
            break
        end = space + 1 + int(digits)
        if end > len(data):
            break
        ends.append(end)
        position = end
    return ends


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """The frames not yet delivered; used by one thread only."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._messages = directory / "messages"
        self._sent_file = directory / "sent"
        self._messages.touch()
        self.size = self._messages.stat().st_size
        self.sent = self._read_sent()
        self._cut_torn_tail()

    def _read_sent(self) -> int:
        try:
            sent = int(self._sent_file.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0
        # More than the file holds: it was emptied and the crash came before `sent` said so.
        return sent if 0 <= sent <= self.size else 0

    def _cut_torn_tail(self) -> None:
        with self._messages.open("rb") as file:
            file.seek(self.sent)
            ends = frame_ends(file.read())
        whole = self.sent + (ends[-1] if ends else 0)
        if whole < self.size:
            log.warning("audit spool: cutting %d bytes of a torn last frame", self.size - whole)
            os.truncate(self._messages, whole)
            self.size = whole

    @property
    def pending(self) -> int:
        """Bytes spooled and not yet delivered."""
        return self.size - self.sent

    def append(self, frames: bytes) -> None:
        with self._messages.open("ab") as file:
            file.write(frames)
            file.flush()
            os.fsync(file.fileno())
        self.size += len(frames)

    def read(self, start: int, limit: int) -> bytes:
        """Whole frames from `start`: as many as fit in `limit` bytes, at least one."""
        with self._messages.open("rb") as file:
            file.seek(start)
            data = file.read(limit)
            ends = frame_ends(data)
            if not ends:  # one frame longer than the limit
                data += file.read(int(data.split(b" ", 1)[0]) + 12)
                ends = frame_ends(data)
        return data[: ends[-1]] if ends else b""

    def mark_sent(self, offset: int) -> None:
        """Record delivery up to `offset` (a frame boundary); empty the spool when all went."""
        if offset == self.size:
            with self._messages.open("r+b") as file:
                file.truncate(0)
                os.fsync(file.fileno())
            self.size = offset = 0
        temporary = self._sent_file.with_suffix(".tmp")
        with temporary.open("w") as file:
            file.write(str(offset))
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(self._sent_file)
        _fsync_directory(self.directory)
        self.sent = offset
