"""The listening socket: one asyncio task per association, the association limit, graceful stop."""

import asyncio
import logging
from dataclasses import dataclass

from pacs.audit.auditor import Auditor
from pacs.net.association import Association, Handlers, Timeouts
from pacs.net.handshake import accept_association
from pacs.net.negotiation import AcceptorPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Listener:
    """Where to listen and how many associations to serve at once."""

    host: str
    port: int
    max_associations: int


class DimseServer:
    """Accepts connections and serves each association as its own task on the running loop."""

    def __init__(
        self,
        listener: Listener,
        policy: AcceptorPolicy,
        handlers: Handlers,
        timeouts: Timeouts,
        auditor: Auditor,
    ) -> None:
        self._auditor = auditor
        self._listener = listener
        self._policy = policy
        self._handlers = handlers
        self._timeouts = timeouts
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._associations: set[Association] = set()
        self._active = 0  # connections being negotiated or served

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): with port 0 in the settings, the one the OS chose."""
        assert self._server is not None, "server not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, self._listener.host, self._listener.port
        )

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        full = self._active >= self._listener.max_associations
        self._active += 1
        try:
            limit = self._listener.max_associations if full else None
            assoc = await accept_association(
                reader,
                writer,
                self._policy,
                self._timeouts,
                association_limit=limit,
                auditor=self._auditor,
            )
            if assoc is not None:
                await self._serve(assoc)
        except Exception:
            log.exception("association task failed")
            writer.close()
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
        if self._server is not None:
            self._server.close()
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
