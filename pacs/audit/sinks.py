"""Where audit events go: a JSON-lines file, and RFC 5424 syslog through a disk spool.

Each sink owns one thread fed by a queue, so the event loop only ever appends to a
queue. A sink never drops an event because its target fails: the file sink keeps its
batch and retries; the syslog sink writes every message to its spool first and sends
from there. The file is fsynced once per batch of lines (a batch is whatever queued up
while the previous one was written), so a crash loses at most events that were still
in memory, never events the file acknowledged.
"""

import functools
import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from pacs.audit.events import AuditEvent, to_json

log = logging.getLogger(__name__)

# Seconds between attempts when a target fails; doubled up to the maximum.
RETRY_INTERVAL = 0.5
MAX_RETRY_INTERVAL = 5.0


class SinkUnavailable(Exception):
    """A sink cannot start: `key` names its [audit] setting, the message says why."""

    def __init__(self, key: str, cause: str) -> None:
        super().__init__(cause)
        self.key = key


def describe_os_error(exc: OSError) -> str:
    if isinstance(exc, FileExistsError):  # from mkdir: the path is there, as a file
        return f"{exc.filename} is not a directory"
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


class Sink:
    """A thread that takes events from a queue and hands them, in batches, to `deliver`."""

    name = "audit sink"

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[AuditEvent | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closing = False  # the thread has taken the last event
        self._stop = threading.Event()  # close() was called

    def start(self) -> None:
        """Start the thread; SinkUnavailable when the target is unusable from the start."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def put(self, event: AuditEvent) -> None:
        self._queue.put(event)

    def close(self) -> None:
        """Deliver what is queued (giving up on an unreachable target), then stop the thread."""
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()

    def _take(self, timeout: float | None) -> list[AuditEvent]:
        """The next batch: wait up to `timeout` for one event, then take all that queued."""
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = [first]
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if None in batch:
            self._closing = True
        return [event for event in batch if event is not None]

    def _run(self) -> None:
        raise NotImplementedError


def retrying(what: str, action: Callable[[], None], stop: threading.Event) -> bool:
    """Call `action` until it succeeds (True), or fails once `stop` is set (False)."""
    delay = RETRY_INTERVAL
    failing = False
    while True:
        try:
            action()
        except OSError as exc:
            if not failing:
                log.error("audit: %s failed, retrying: %s", what, exc)
                failing = True
            if stop.is_set() or stop.wait(delay):
                return False
            delay = min(delay * 2, MAX_RETRY_INTERVAL)
            continue
        if failing:
            log.warning("audit: %s works again", what)
        return True


class JsonLinesSink(Sink):
    """Appends one JSON object per line to a file; fsync once per batch."""

    name = "audit file"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def start(self) -> None:
        try:
            self._write("")  # a file that cannot be appended to fails the start, not an event
        except OSError as exc:
            raise SinkUnavailable(
                "file", f"cannot append to {self.path}: {describe_os_error(exc)}"
            ) from exc
        super().start()

    def _write(self, lines: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(lines)
            file.flush()
            os.fsync(file.fileno())

    def _run(self) -> None:
        while not self._closing:
            batch = self._take(None)
            if batch:
                lines = "".join(to_json(event) + "\n" for event in batch)
                # At close an unwritable file is reported and its batch lost: nothing
                # else can hold it (the log says how many).
                if not retrying(
                    f"writing {self.path}", functools.partial(self._write, lines), self._stop
                ):
                    log.error("audit: %d events not written to %s", len(batch), self.path)
