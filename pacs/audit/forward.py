"""RFC 5424 syslog over TCP or TLS (RFC 5425 framing) carrying DICOM audit messages.

Every message is spooled (appended and fsynced) before it is sent, and sent from the
spool in order, so an outage of the receiver or a restart of pacs loses nothing.
Delivery is at least once: plain syslog has no acknowledgement, so a batch counts as
delivered only when the connection is still open a moment after it was sent
(CONFIRM_DELAY); a receiver that closed in between gets the batch again on the next
connection, and a restart resends what was not yet confirmed. Receivers that must
not see duplicates can drop them by EventDateTime and content.
"""

import collections
import functools
import logging
import os
import select
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from pacs.audit.events import AuditEvent
from pacs.audit.message import render
from pacs.audit.sinks import (
    MAX_RETRY_INTERVAL,
    RETRY_INTERVAL,
    Sink,
    SinkUnavailable,
    describe_os_error,
    retrying,
)
from pacs.audit.spool import Spool, frame

log = logging.getLogger(__name__)

# RFC 5424 PRI: facility 10 (security/authorization) * 8 + severity 5 (notice).
PRIORITY = 85
MSGID = "IHE+RFC-3881"
CONFIRM_DELAY = 0.2  # seconds a sent batch waits for its connection to prove alive
BATCH_BYTES = 1024 * 1024
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class SyslogTarget:
    """Where to send: `tls` with the CA that vouches for the receiver, and our own key pair."""

    host: str
    port: int
    tls: bool = False
    ca_certificates: Path | None = None
    certificate: Path | None = None
    private_key: Path | None = None

    def describe(self) -> str:
        return f"{'tls' if self.tls else 'tcp'}://{self.host}:{self.port}"


def syslog_message(event: AuditEvent, hostname: str, app_name: str = "pacs") -> bytes:
    """One RFC 5424 message: header, no structured data, a BOM and the audit XML."""
    header = (
        f"<{PRIORITY}>1 {event.time.isoformat()} {hostname or '-'} {app_name} "
        f"{os.getpid()} {MSGID} - "
    )
    return header.encode("ascii") + b"\xef\xbb\xbf" + render(event)


def tls_context(target: SyslogTarget) -> ssl.SSLContext:
    """The client side of TLS to the receiver; SinkUnavailable names the file that failed."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if target.ca_certificates is not None:
            context.load_verify_locations(cafile=target.ca_certificates)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise SinkUnavailable("ca_certificates", _tls_failure(target.ca_certificates, exc)) from exc
    try:
        if target.certificate is not None:
            context.load_cert_chain(target.certificate, target.private_key)
    except (OSError, ValueError) as exc:
        key = "certificate" if target.private_key is None else "certificate or private_key"
        raise SinkUnavailable(key, _tls_failure(target.certificate, exc)) from exc
    return context


def _tls_failure(path: Path | None, exc: Exception) -> str:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"cannot load {path}: {reason}"


def _peer_closed(sock: socket.socket) -> bool:
    """True when the receiver closed or reset the connection (receivers never send data)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except (ssl.SSLWantReadError, BlockingIOError):
        return False  # a TLS record that is not data, such as a session ticket
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


class SyslogSink(Sink):
    """Spools each event's message, then sends from the spool while the receiver is up."""

    name = "audit syslog"

    def __init__(self, target: SyslogTarget, spool_directory: Path) -> None:
        super().__init__()
        self.target = target
        self._spool_directory = spool_directory
        self._spool: Spool | None = None
        self._hostname = socket.gethostname()
        self._context: ssl.SSLContext | None = None
        self._sock: socket.socket | None = None
        self._sent_to = 0  # spool offset sent on this connection, not yet confirmed
        # (end offset, when sent) of each batch sent and not yet confirmed, oldest first.
        self._in_flight: collections.deque[tuple[int, float]] = collections.deque()
        self._down = False

    def start(self) -> None:
        # In the caller: a spool or certificate that cannot be used fails the start.
        self._context = tls_context(self.target) if self.target.tls else None
        try:
            self._spool = Spool(self._spool_directory)
        except OSError as exc:
            raise SinkUnavailable("spool", describe_os_error(exc)) from exc
        self._sent_to = self._spool.sent
        if self._spool.pending:
            log.info("audit: %d bytes spooled for %s", self._spool.pending, self.target.describe())
        super().start()

    def _connect(self) -> socket.socket:
        target = self.target
        sock = socket.create_connection((target.host, target.port), timeout=CONNECT_TIMEOUT)
        if self._context is not None:
            try:
                sock = self._context.wrap_socket(sock, server_hostname=target.host)
            except OSError:
                sock.close()
                raise
        return sock

    def _disconnect(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        assert self._spool is not None
        self._sent_to = self._spool.sent  # unconfirmed batches go again
        self._in_flight.clear()

    def _confirm(self, spool: Spool) -> None:
        """Count as delivered the batches the open connection carried CONFIRM_DELAY ago."""
        settled = time.monotonic() - CONFIRM_DELAY
        confirmed = None
        while self._in_flight and self._in_flight[0][1] <= settled:
            confirmed = self._in_flight.popleft()[0]
        if confirmed is not None:
            spool.mark_sent(confirmed)
            if not self._in_flight:  # the spool may have been emptied: offsets restart
                self._sent_to = spool.sent

    def _send(self) -> None:
        """Confirm what the open connection carried, then send what is pending."""
        spool = self._spool
        assert spool is not None
        if self._sock is not None and _peer_closed(self._sock):
            self._disconnect()
            raise ConnectionError("the receiver closed the connection")
        self._confirm(spool)
        if self._sent_to >= spool.size:
            return
        if self._sock is None:
            self._sock = self._connect()
        data = spool.read(self._sent_to, BATCH_BYTES)
        try:
            self._sock.sendall(data)
        except OSError:
            self._disconnect()
            raise
        self._sent_to += len(data)
        self._in_flight.append((self._sent_to, time.monotonic()))

    def _attempt(self) -> bool:
        """Try to send; True when it worked, else log the outage once and return False."""
        try:
            self._send()
        except OSError as exc:
            if not self._down:
                self._down = True
                log.error("audit: syslog %s unreachable, spooling: %s", self.target.describe(), exc)
            return False
        if self._down:
            self._down = False
            log.warning("audit: syslog %s reachable again", self.target.describe())
        return True

    def _unconfirmed(self) -> bool:
        assert self._spool is not None
        return bool(self._in_flight) or self._sent_to < self._spool.size

    def _spool_batch(self, batch: list[AuditEvent]) -> None:
        assert self._spool is not None
        frames = b"".join(frame(syslog_message(e, self._hostname)) for e in batch)
        if not retrying("spooling", functools.partial(self._spool.append, frames), self._stop):
            log.error("audit: %d events not spooled", len(batch))

    def _run(self) -> None:
        """Spool each batch as it comes; send when the receiver is not in its backoff."""
        delay = RETRY_INTERVAL
        retry_at = 0.0  # while the receiver is down: when to try it again
        timeout: float | None = None
        while not self._closing:
            if batch := self._take(timeout):
                self._spool_batch(batch)
            if (wait := retry_at - time.monotonic()) > 0:
                timeout = wait  # events that come meanwhile are spooled, not sent
            elif self._attempt():
                delay, retry_at = RETRY_INTERVAL, 0.0
                timeout = CONFIRM_DELAY if self._unconfirmed() else None
            else:
                retry_at, timeout = time.monotonic() + delay, delay
                delay = min(delay * 2, MAX_RETRY_INTERVAL)
        self._finish()

    def _finish(self) -> None:
        """At close: confirm and send what can go now; the rest waits in the spool.

        A receiver already known to be down is not tried again, so stopping pacs does
        not wait for a connection timeout.
        """
        if not self._down and self._attempt() and self._unconfirmed():
            time.sleep(CONFIRM_DELAY)  # the receiver's chance to close on us, as in _run
            self._attempt()
        if self._sock is not None:
            self._sock.close()
        assert self._spool is not None
        if self._spool.pending:
            log.warning(
                "audit: %d bytes stay spooled for %s until the next start",
                self._spool.pending,
                self.target.describe(),
            )
