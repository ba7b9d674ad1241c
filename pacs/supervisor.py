"""`pacs serve` with `[server] workers` > 1: that many serving processes on one port, kept up.

The supervisor binds the DICOM port (and the TLS and DICOMweb ports) first, with
SO_REUSEPORT, which tells it the port when the configuration says 0; it keeps those sockets
bound but never listens on them, so that no other program takes the port while a worker
restarts. Each worker is `pacs serve --worker SPEC`, which binds the same port with
SO_REUSEPORT and listens: the kernel spreads new connections over the listening workers.
Workers share nothing in memory; they coordinate through the database (PostgreSQL:
config_workers).

Two pipes link the supervisor and a worker: the worker writes one byte on the first once
it listens; the second is never written, and its end of file tells the worker that the
supervisor is gone (even killed with -9), so no orphan keeps serving.

A worker that exits before it listens at start-up stops them all, with its exit status (a
configuration, database or store problem would only repeat). One that dies later is
started again after a backoff, with a WARNING. SIGTERM or SIGINT stops every worker
gracefully (each gets SIGTERM and stops as `pacs serve` does) and the supervisor exits 0;
SIGHUP is passed on, so every worker reloads.
"""

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pacs.app import run
from pacs.config import Settings
from pacs.net.listen_errors import listen_failure
from pacs.web.server import listening_host

log = logging.getLogger(__name__)

RESTART_BACKOFF = 0.5  # seconds before the first restart of a worker that died
MAX_RESTART_BACKOFF = 30.0
STEADY_AFTER = 60.0  # a worker that ran this long before dying restarts after the first backoff
# A worker's own graceful stop takes up to app.SHUTDOWN_GRACE and the commits' drain.
STOP_TIMEOUT = 40.0


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker is told on its command line: its number, ports and pipe ends."""

    number: int
    server_port: int
    tls_port: int | None
    web_port: int | None
    ready_fd: int
    lifeline_fd: int

    def encode(self) -> str:
        tls = "" if self.tls_port is None else str(self.tls_port)
        web = "" if self.web_port is None else str(self.web_port)
        return f"{self.number}:{self.server_port}:{tls}:{web}:{self.ready_fd}:{self.lifeline_fd}"

    @classmethod
    def parse(cls, text: str) -> "WorkerSpec":
        number, server, tls, web, ready, lifeline = text.split(":")
        tls_port = int(tls) if tls else None
        web_port = int(web) if web else None
        return cls(int(number), int(server), tls_port, web_port, int(ready), int(lifeline))


def worker_settings(settings: Settings, spec: WorkerSpec) -> Settings:
    """A worker's settings: the ports the supervisor bound, and its own metrics port
    (`[metrics] port + number - 1`) and audit spool directory (`spool/worker-NUMBER`)."""
    changes: dict[str, object] = {
        "server": dataclasses.replace(settings.server, port=spec.server_port)
    }
    if settings.tls is not None and spec.tls_port is not None:
        changes["tls"] = dataclasses.replace(settings.tls, port=spec.tls_port)
    if spec.web_port is not None:
        changes["web"] = dataclasses.replace(settings.web, port=spec.web_port)
    if port := settings.metrics.port:
        changes["metrics"] = dataclasses.replace(settings.metrics, port=port + spec.number - 1)
    spool = settings.audit.spool / f"worker-{spec.number}"
    changes["audit"] = dataclasses.replace(settings.audit, spool=spool)
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def run_worker(settings: Settings, config_path: Path | None, spec: WorkerSpec) -> None:
    """Serve as one of the supervisor's workers until SIGTERM or the supervisor is gone."""

    def started(stop: asyncio.Event) -> None:
        os.write(spec.ready_fd, b"1")
        os.close(spec.ready_fd)
        loop = asyncio.get_running_loop()
        loop.add_reader(spec.lifeline_fd, _supervisor_gone, loop, spec, stop)

    own = worker_settings(settings, spec)
    asyncio.run(run(own, config_path, reuse_port=True, started=started))


def _supervisor_gone(
    loop: asyncio.AbstractEventLoop, spec: WorkerSpec, stop: asyncio.Event
) -> None:
    loop.remove_reader(spec.lifeline_fd)
    log.warning("worker %d: the supervisor is gone; stopping", spec.number)
    stop.set()


def reserve_port(
    host: str, port: int, key: str, host_key: str = "[server] host"
) -> tuple[list[socket.socket], int]:
    """Bind (not listen) every address of host on one port with SO_REUSEPORT; the port.

    StartupError names `key` or `host_key` when the address cannot be had.
    """
    sockets: list[socket.socket] = []
    try:
        addresses = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((address[0], port, *address[2:]))
            port = sock.getsockname()[1]  # the first bind chooses it when port is 0
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise listen_failure(host, port, key, exc, host_key) from exc
    return sockets, port


@dataclass(slots=True)
class _Worker:
    number: int
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    backoff: float = RESTART_BACKOFF


class Supervisor:
    """Starts `[server] workers` serving processes and keeps them running until stopped."""

    def __init__(self, settings: Settings, config_path: Path | None) -> None:
        self._settings = settings
        self._config_path = config_path
        self._workers = [_Worker(n) for n in range(1, settings.server.workers + 1)]
        self._ports: tuple[int, int | None, int | None] = (0, None, None)
        self._lifeline = -1  # the workers' end of the pipe the supervisor never writes
        self._stopping = False

    async def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status (a worker's when start-up failed)."""
        server = self._settings.server
        sockets, port = reserve_port(server.host, server.port, "[server] port")
        tls_port = web_port = None
        if (tls := self._settings.tls) is not None:
            more, tls_port = reserve_port(server.host, tls.port, "[tls] port")
            sockets += more
        if (web := self._settings.web).port is not None:
            host = listening_host(web)
            more, web_port = reserve_port(host, web.port, "[web] port", "[web] host")
            sockets += more
        self._ports = (port, tls_port, web_port)
        self._lifeline, keep = os.pipe()
        try:
            return await self._supervise()
        finally:
            for fd in (self._lifeline, keep):
                os.close(fd)
            for sock in sockets:
                sock.close()

    async def _supervise(self) -> int:
        ready = await asyncio.gather(*(self._spawn(worker) for worker in self._workers))
        if not all(ready):
            failed = self._workers[ready.index(False)]
            assert failed.process is not None
            code = await failed.process.wait()
            log.error("worker %d could not start (%s); stopping", failed.number, _ending(code))
            await self._stop_all()
            return code if code > 0 else 1
        server = self._settings.server
        log.info(
            "pacs listening on %s:%d as %s with %d workers",
            server.host,
            self._ports[0],
            server.ae_title,
            len(self._workers),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._signal_all, signal.SIGHUP)
        keepers = [asyncio.create_task(self._keep(worker)) for worker in self._workers]
        await stop.wait()
        self._stopping = True
        for keeper in keepers:
            keeper.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        await self._stop_all()
        return 0

    def _command(self, spec: WorkerSpec) -> list[str]:
        config = [] if self._config_path is None else ["--config", str(self._config_path)]
        return [sys.executable, "-m", "pacs", "serve", *config, "--worker", spec.encode()]

    async def _spawn(self, worker: _Worker) -> bool:
        """Start a worker; True once it listens, False when it exited first."""
        ready_fd, write_fd = os.pipe()
        spec = WorkerSpec(worker.number, *self._ports, write_fd, self._lifeline)
        try:
            worker.process = await asyncio.create_subprocess_exec(
                *self._command(spec), pass_fds=(write_fd, self._lifeline)
            )
        finally:
            os.close(write_fd)
        worker.started_at = time.monotonic()
        log.info("worker %d started (pid %d)", worker.number, worker.process.pid)
        return await _read_ready(ready_fd)

    async def _keep(self, worker: _Worker) -> None:
        """Start the worker again whenever it dies, after a backoff growing to a cap."""
        while True:
            assert worker.process is not None
            code = await worker.process.wait()
            if self._stopping:
                return
            if time.monotonic() - worker.started_at >= STEADY_AFTER:
                worker.backoff = RESTART_BACKOFF
            log.warning(
                "worker %d (pid %d) %s; starting it again in %.1f s",
                worker.number,
                worker.process.pid,
                _ending(code),
                worker.backoff,
            )
            await asyncio.sleep(worker.backoff)
            worker.backoff = min(worker.backoff * 2, MAX_RESTART_BACKOFF)
            await self._spawn(worker)

    def _signal_all(self, sig: int) -> None:
        for worker in self._workers:
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(sig)

    async def _stop_all(self) -> None:
        """SIGTERM every worker and wait for its graceful stop; SIGKILL one that overstays."""
        self._signal_all(signal.SIGTERM)
        running = [(w.number, w.process) for w in self._workers if w.process is not None]
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                codes = await asyncio.gather(*(process.wait() for _, process in running))
        except TimeoutError:
            log.warning("workers still running %.0f s after SIGTERM: killing them", STOP_TIMEOUT)
            self._signal_all(signal.SIGKILL)
            codes = await asyncio.gather(*(process.wait() for _, process in running))
        for (number, _), code in zip(running, codes, strict=True):
            if code != 0:
                log.warning("worker %d %s", number, _ending(code))
        log.info("pacs stopped: %d workers", len(running))


async def _read_ready(fd: int) -> bool:
    """Whether the worker wrote its byte before closing its end of the pipe."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        return await reader.read(1) == b"1"
    finally:
        transport.close()


def _ending(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def supervise(settings: Settings, config_path: Path | None) -> int:
    """`pacs serve` with several workers: the supervisor's exit status."""
    return asyncio.run(Supervisor(settings, config_path).run())
