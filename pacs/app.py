"""Composition root: builds the archive's parts from the settings and runs them on one loop."""

import asyncio
import logging
import signal

from pacs.config import Settings
from pacs.net.association import Handlers, Timeouts
from pacs.net.contexts import VERIFICATION, verification_contexts
from pacs.net.dimse import Command
from pacs.net.echo import handle_echo
from pacs.net.negotiation import AcceptorPolicy
from pacs.net.server import DimseServer, Listener

log = logging.getLogger(__name__)

# Seconds running associations get to finish when the server is asked to stop.
SHUTDOWN_GRACE = 10.0


class PacsApp:
    """The running archive: its DICOM server and the services behind it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        server = settings.server
        handlers = Handlers()
        handlers.register(Command.C_ECHO_RQ, [VERIFICATION], handle_echo)
        policy = AcceptorPolicy(
            ae_title=server.ae_title,
            check_called_ae_title=server.check_called_ae_title,
            max_pdu_length=server.max_pdu_length,
            contexts=verification_contexts(),
        )
        self.timeouts = Timeouts(
            acse=server.acse_timeout, dimse=server.dimse_timeout, network=server.network_timeout
        )
        self.server = DimseServer(
            Listener(server.host, server.port, server.max_associations),
            policy,
            handlers,
            self.timeouts,
        )

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    async def start(self) -> None:
        await self.server.start()
        host, port = self.address
        log.info("pacs listening on %s:%d as %s", host, port, self.settings.server.ae_title)

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        log.info("pacs stopping: refusing new associations, %.0f s for running ones", grace)
        await self.server.stop(grace)
        log.info("pacs stopped")


async def run(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly."""
    app = PacsApp(settings)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await app.stop()
