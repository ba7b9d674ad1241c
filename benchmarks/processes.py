"""Processes under measurement: servers' ports, readiness, peak memory and stopping,
and the wait for client processes that times a run.

The harness imports nothing from `pacs`, so it can measure a pacs that is
mid-change (or broken) as a black box, exactly as it measures Orthanc.
"""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

# DCMTK reads TCP_NODELAY from the environment; Orthanc links DCMTK's network layer.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
# DCMTK's clients as they come: Nagle's algorithm on.
DCMTK_DEFAULTS_ENV = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}
_POLL_SECONDS = 0.1
_PR_SET_PDEATHSIG = 1


class ServerFailed(RuntimeError):
    """A server did not start, or died, during a run."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    """Return once `port` accepts connections; raise if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"exited with {process.returncode} at start:\n{log_tail(log)}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServerFailed(f"port {port} not open after {timeout:.0f} s:\n{log_tail(log)}")


def listeners(port: int) -> int:
    """How many sockets listen on `port` (Linux: /proc/net/tcp and tcp6; several with
    SO_REUSEPORT, one per pacs worker)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def wait_for_listeners(
    process: subprocess.Popen[bytes], port: int, count: int, log: Path, timeout: float
) -> None:
    """Return once `count` sockets listen on `port` (every worker of a pacs supervisor)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"exited with {process.returncode} at start:\n{log_tail(log)}")
        if listeners(port) >= count:
            return
        time.sleep(0.05)
    raise ServerFailed(f"{count} listeners on {port} not there after {timeout:.0f} s")


def wait_all(processes: Sequence[subprocess.Popen[bytes]], timeout: float) -> list[int]:
    """Block until every process has exited and return their exit codes; past `timeout`
    seconds a watchdog kills them all, and TimeoutExpired is raised once they are reaped.

    A run's clock stops when this returns, so it must return at the last exit:
    Popen.wait(timeout) sleeps up to 50 ms between checks, Popen.wait() blocks in waitpid.
    """
    lock, state = threading.Lock(), {"finished": False, "expired": False}

    def expire() -> None:
        with lock:
            if state["finished"]:
                return
            state["expired"] = True
            for process in processes:
                with contextlib.suppress(OSError):
                    process.kill()  # skips a process already reaped

    watchdog = threading.Timer(timeout, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        codes = [process.wait() for process in processes]
    finally:
        with lock:
            state["finished"] = True
        watchdog.cancel()
    if state["expired"]:
        raise subprocess.TimeoutExpired(processes[0].args, timeout)
    return codes


def _die_with_harness() -> None:
    """Run in the child before exec: SIGTERM it when the harness dies, even of SIGKILL
    (a test's timeout), so no server outlives its benchmark (Linux PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def launch(
    argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a server with its output in `log`, in a session of its own."""
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            # Servers start before any PeakMemory thread, and the hook only calls prctl.
            preexec_fn=_die_with_harness if sys.platform == "linux" else None,  # noqa: PLW1509
        )


def _status_kb(pid: int, field: str) -> int:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM); 0 once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (storescp --fork serves each association in a child)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(entry.path, "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found.extend(kids)
        todo.extend(kids)
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants now, in MB (10^6 bytes)."""
    return sum(_status_kb(p, "VmRSS") for p in [pid, *descendants(pid)]) * 1024 / 1e6


def reset_peak(pid: int) -> None:
    """Restart VmHWM from the current RSS (Linux >= 4.0), so a later peak excludes earlier work."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


class PeakMemory:
    """Track a server's peak resident memory: its own VmHWM, or its process tree's polled VmRSS."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._tree_peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(_POLL_SECONDS):
            pids = [self.pid, *descendants(self.pid)]
            total = sum(_status_kb(pid, "VmRSS") for pid in pids)
            self._tree_peak_kb = max(self._tree_peak_kb, total)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mb(self) -> float:
        """Peak so far in MB (10^6 bytes); read it before the server stops."""
        return max(_status_kb(self.pid, "VmHWM"), self._tree_peak_kb) * 1024 / 1e6


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the server (graceful stop), SIGKILL it if it lingers, then any forked children.

    `launch` made the server a process-group leader, so the group holds only it and
    its children (storescp --fork workers).
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
