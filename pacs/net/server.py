"""The listening socket: one asyncio task per association, the association limit, graceful stop."""

import asyncio
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

from pacs.audit.auditor import Auditor
from pacs.metrics.recorder import ArchiveMetrics
from pacs.net.association import Association
from pacs.net.handlers import Handlers
from pacs.net.handshake import accept_association
from pacs.net.negotiation import AcceptorPolicy
from pacs.net.negotiation_memo import NegotiationMemo
from pacs.net.permissions import Gatekeeper
from pacs.net.timeouts import Timeouts
from pacs.net.tls import start_tls_server
from pacs.net.wire import Wire

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Listener:
    """Where to listen and how many associations to serve at once."""

    host: str
    port: int
    max_associations: int
    plain: bool = True  # False: only the TLS listener accepts associations
    # SO_REUSEPORT: several worker processes listen on the same port (pacs.supervisor).
    reuse_port: bool = False


@dataclass(slots=True)
class TlsListener:
    """The DICOM TLS port beside the plain one."""

    port: int
    context: ssl.SSLContext
    handshake_timeout: float
    # Calling AE titles bound to a certificate subject, on either listener; replaced on reload.
    bound_subjects: Mapping[str, str] = field(default_factory=dict)


class DimseServer:
    """Accepts connections and serves each association as its own task on the running loop."""

    def __init__(
        self,
        listener: Listener,
        policy: AcceptorPolicy,
        handlers: Handlers,
        timeouts: Timeouts,
        *,
        auditor: Auditor,
        gatekeeper: Gatekeeper | None = None,
        tls: TlsListener | None = None,
        metrics: ArchiveMetrics | None = None,
    ) -> None:
        self._auditor = auditor
        self._metrics = metrics
        self._listener = listener
        self.policy = policy  # replaced on reload; running associations keep their agreement
        self._gatekeeper = gatekeeper
        self._negotiations = NegotiationMemo()
        self._tls = tls
        self._handlers = handlers
        self._timeouts = timeouts
        self._server: asyncio.Server | None = None
        self._tls_server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._associations: set[Association] = set()
        self._active = 0  # connections being negotiated or served
        self._stopping = False

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): with port 0 in the settings, the one the OS chose.

        The plain listener's, or the TLS one's when there is no plain listener.
        """
        server = self._server or self._tls_server
        assert server is not None, "server not started"
        host, port = server.sockets[0].getsockname()[:2]
        return host, port

    @property
    def open_associations(self) -> int:
        """Associations being served now (negotiated, not yet ended)."""
        return len(self._associations)

    @property
    def tls_address(self) -> tuple[str, int] | None:
        """The bound (host, port) of the TLS listener, if there is one."""
        if self._tls_server is None:
            return None
        host, port = self._tls_server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        """Listen on the plain port, the TLS port, or both.

        An OSError from the TLS port carries the note "[tls] port".
        """
        if self._tls is not None:
            tls = self._tls
            try:
                self._tls_server = await start_tls_server(
                    self._listener.host,
                    tls.port,
                    tls.context,
                    tls.handshake_timeout,
                    self._on_connection,
                    auditor=self._auditor,
                    reuse_port=self._listener.reuse_port,
                )
            except OSError as exc:
                exc.add_note("[tls] port")
                raise
        if self._listener.plain:
            try:
                loop = asyncio.get_running_loop()
                self._server = await loop.create_server(
                    lambda: Wire(self._spawn),
                    self._listener.host,
                    self._listener.port,
                    reuse_port=self._listener.reuse_port,
                )
            except OSError:
                if self._tls_server is not None:
                    self._tls_server.close()
                raise

    def _spawn(self, wire: Wire) -> None:
        # The task adds itself to self._tasks; the loop holds it until it first runs.
        asyncio.get_running_loop().create_task(self._on_connection(wire))

    async def _on_connection(self, wire: Wire) -> None:
        if self._stopping:  # a TLS handshake that finished after stop() closed the listeners
            wire.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        full = self._active >= self._listener.max_associations
        self._active += 1
        try:
            limit = self._listener.max_associations if full else None
            assoc = await accept_association(
                wire,
                self.policy,
                self._timeouts,
                association_limit=limit,
                gatekeeper=self._gatekeeper,
                bound_subjects=self._tls.bound_subjects if self._tls else None,
                auditor=self._auditor,
                memo=self._negotiations,
            )
            if self._metrics is not None:
                if assoc is None:
                    self._metrics.association_refused()
                else:
                    self._metrics.association_accepted()
                    assoc.tally = self._metrics.peer(assoc.agreement.calling_ae_title)
            if assoc is not None:
                await self._serve(assoc)
        except Exception:
            log.exception("association task failed")
            wire.close()
        finally:
            self._active -= 1
            self._tasks.discard(task)

    async def _serve(self, assoc: Association) -> None:
        self._associations.add(assoc)
        try:
            await assoc.serve(self._handlers)  # its closing line is the association's own
        finally:
            self._associations.discard(assoc)
            self._auditor.association_ended(assoc)

    async def stop(self, grace: float) -> None:
        """Refuse new associations, give running ones `grace` seconds, then abort the rest."""
        self._stopping = True
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            if pending:
                log.warning("aborting %d associations still open at shutdown", len(pending))
                await asyncio.gather(
                    *(assoc.abort("shutting down") for assoc in list(self._associations)),
                    return_exceptions=True,
                )
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
