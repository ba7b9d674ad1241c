"""Composition root: builds the archive's parts from the settings and runs them on one loop.

The thread pools are created and closed here; `pacs.threads` maps which work runs where.
"""

import asyncio
import dataclasses
import gc
import logging
import signal
from collections.abc import Callable
from pathlib import Path

import pydicom.config

from pacs.archive.commitment import CommitmentPolicy, CommitmentService
from pacs.archive.deidentification import Deidentifications, load_profiles
from pacs.archive.group_commit import GroupCommit
from pacs.archive.ingest import Ingest
from pacs.archive.query import QueryOptions, QueryService
from pacs.archive.retrieve import RetrieveService
from pacs.archive.wado import WadoService
from pacs.audit.sinks import SinkUnavailable
from pacs.audit.trail import build_auditor
from pacs.config import Settings
from pacs.errors import ConfigError, StartupError, StoreUnavailable
from pacs.index.commitments import CommitmentLedger
from pacs.index.engine import (
    AsyncEngine,
    PoolLimits,
    check_connection,
    create_engine,
    create_read_engine,
    create_sessionmaker,
    prepare_sqlite_directory,
)
from pacs.index.find import Finder
from pacs.index.locate import Locator
from pacs.index.reads import open_reads
from pacs.index.repository import Index
from pacs.index.schema import ensure_schema
from pacs.index.wado import WadoCatalogue
from pacs.metrics.collector import build_registry
from pacs.metrics.endpoint import MetricsEndpoint
from pacs.metrics.probes import Probes, ScrapeRefresh
from pacs.metrics.recorder import ArchiveMetrics
from pacs.net.commitment_scp import make_commitment_handler
from pacs.net.commitment_scu import NetReportSender, OpenAssociations
from pacs.net.contexts import (
    QUERY_RETRIEVE_FIND,
    QUERY_RETRIEVE_GET,
    QUERY_RETRIEVE_MOVE,
    STORAGE_COMMITMENT,
    VERIFICATION,
    commitment_contexts,
    query_contexts,
    retrieve_contexts,
    storage_contexts,
    storage_sop_classes,
    verification_contexts,
)
from pacs.net.dimse import Command
from pacs.net.echo import handle_echo
from pacs.net.find_scp import make_find_handler
from pacs.net.get_scp import make_get_handler
from pacs.net.handlers import Handlers
from pacs.net.listen_errors import listen_failure
from pacs.net.move_scp import make_move_handler
from pacs.net.negotiation import AcceptorPolicy
from pacs.net.operation_log import operation_name
from pacs.net.peers import Requestor
from pacs.net.permissions import Gatekeeper, describe
from pacs.net.server import DimseServer, Listener, TlsListener
from pacs.net.store_scp import make_store_handler
from pacs.net.timeouts import Timeouts
from pacs.net.tls import client_context, server_context
from pacs.peer_config import PeerConfiguration, needing_restart, reread
from pacs.store.backends import open_store, probe, store_setting
from pacs.threads import ThreadPools
from pacs.web.keys import WebServices
from pacs.web.server import WebServer

log = logging.getLogger(__name__)

# Seconds running associations get to finish when the server is asked to stop.
SHUTDOWN_GRACE = 10.0
# Operations whose durations the metrics keep as histograms.
TIMED_OPERATIONS = (Command.C_STORE_RQ, Command.C_FIND_RQ, Command.C_MOVE_RQ, Command.C_GET_RQ)
# Staging files the store keeps created ahead of need: one each for a few associations
# storing at once (a C-STORE that finds none creates its own).
SPARE_STAGING_FILES = 4
# Seconds between looks for commitment transactions other processes left (they died).
COMMITMENT_POLL = 10.0


def _trust_pydicom_values() -> None:
    """Skip pydicom's value validation (a regex per UID and string, on every command set).

    pacs stores what peers send byte for byte and builds its own command sets from
    values already checked, so validating them again is work on every sub-operation
    and association for nothing. Structural errors are still raised.
    """
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE


class PacsApp:
    """The running archive: its DICOM server and the services behind it."""

    def __init__(
        self, settings: Settings, config_path: Path | None = None, *, reuse_port: bool = False
    ) -> None:
        _trust_pydicom_values()
        self.reuse_port = reuse_port  # a worker beside others on the port (pacs.supervisor)
        self.settings = settings
        self.config_path = config_path  # what SIGHUP reloads
        peers = PeerConfiguration.of(settings)
        self.gatekeeper = Gatekeeper(peers.access)
        storage = settings.storage
        database = settings.database
        limits = PoolLimits(
            database.pool_size,
            database.max_overflow,
            database.pool_timeout,
            database.connect_timeout,
        )
        self.engine = create_engine(database.url, limits)
        sessions = create_sessionmaker(self.engine)
        self.threads = ThreadPools()
        self.index = Index.open(self.engine, self.threads.index_writer, limits)
        self.reads = open_reads(
            self.engine,
            create_read_engine(database.url, limits),
            threads=self.threads.index_readers,
        )
        self.store = open_store(
            storage.root,
            storage.s3 if storage.backend == "s3" else None,
            commits=self.threads.store_commits,
            fsync=storage.fsync,
            min_free_bytes=storage.min_free_bytes,
            spare_files=SPARE_STAGING_FILES,
        )
        self.metrics = ArchiveMetrics(TIMED_OPERATIONS, operation_name)
        self.commits = GroupCommit(
            self.index, storage.duplicate_policy, on_batch=self.metrics.batch_committed
        )
        self.ingest = Ingest(self.store, self.commits)
        self.queries = QueryService(
            Finder(self.reads),
            QueryOptions(
                fold_pn=settings.query.case_insensitive_pn,
                max_results=settings.query.max_results,
                retrieve_ae_title=settings.server.ae_title,
            ),
        )
        self.retrieve = RetrieveService(Locator(self.reads), self.store)
        # Profiles get their secrets on start, once the store root is known to be usable.
        self.deidentifications = Deidentifications({}, peers.deidentified, self.index)
        server = settings.server
        self.timeouts = Timeouts(
            acse=server.acse_timeout, dimse=server.dimse_timeout, network=server.network_timeout
        )
        self.destinations = peers.destinations
        tls = settings.tls
        self.tls_listener: TlsListener | None = None
        if tls is not None:
            self.tls_listener = TlsListener(
                tls.port, server_context(tls), tls.handshake_timeout, peers.bound_subjects
            )
        self.auditor = build_auditor(settings.audit, server.ae_title)
        self.requestor = Requestor(
            server.ae_title,
            server.max_pdu_length,
            self.timeouts,
            client_context(tls) if tls else None,
            self.auditor,
        )
        self.open_associations = OpenAssociations()
        commitment = settings.commitment
        ledger = CommitmentLedger(sessions)
        self.commitments = CommitmentService(
            ledger,
            self.index,
            self.store,
            NetReportSender(self.open_associations, self.destinations, self.requestor),
            CommitmentPolicy(
                verify_hash=commitment.verify == "hash",
                retry_interval=commitment.retry_interval,
                max_retry_interval=commitment.max_retry_interval,
                deadline=commitment.report_deadline,
                poll_interval=COMMITMENT_POLL,
            ),
            auditor=self.auditor,
        )
        self._worker: asyncio.Task[None] | None = None
        self.server = self._build_server()
        self.metrics_endpoint: MetricsEndpoint | None = None
        if (port := settings.metrics.port) is not None:
            probes = Probes(
                lambda: self.server.open_associations,
                self.store.free_bytes,
                self.index.count_instances,
                ledger.count_by_state,
            )
            refresh = ScrapeRefresh(self.metrics, probes)
            registry = build_registry(self.metrics)
            self.metrics_endpoint = MetricsEndpoint(settings.metrics.host, port, registry, refresh)
        policy = lambda: self.gatekeeper.policy  # noqa: E731  # follows SIGHUP
        classes = frozenset(storage_sop_classes())
        wado = WadoService(WadoCatalogue(self.reads, sessions), self.store, self.retrieve)
        web = WebServices(
            self.queries, self.ingest, self.retrieve, self.auditor, policy, classes, wado
        )
        self.web = WebServer.configured(settings.web, tls, web, reuse_port=reuse_port)

    def _build_server(self) -> DimseServer:
        server = self.settings.server
        handlers = Handlers()
        handlers.register(Command.C_ECHO_RQ, [VERIFICATION], handle_echo)
        handlers.register(
            Command.C_FIND_RQ, QUERY_RETRIEVE_FIND, make_find_handler(self.queries, self.auditor)
        )
        handlers.register(
            Command.C_GET_RQ,
            QUERY_RETRIEVE_GET,
            make_get_handler(self.retrieve, self.auditor, self.deidentifications),
        )
        handlers.register(
            Command.C_MOVE_RQ,
            QUERY_RETRIEVE_MOVE,
            make_move_handler(
                self.retrieve,
                self.destinations,
                self.requestor,
                self.auditor,
                self.gatekeeper,
                deidentifications=self.deidentifications,
            ),
        )
        handlers.register(
            Command.N_ACTION_RQ,
            [STORAGE_COMMITMENT],
            make_commitment_handler(self.commitments, self.open_associations),
        )
        handlers.register(
            Command.C_STORE_RQ, storage_sop_classes(), make_store_handler(self.ingest, self.auditor)
        )
        policy = AcceptorPolicy(
            ae_title=server.ae_title,
            check_called_ae_title=self.settings.access.check_called_ae_title,
            max_pdu_length=server.max_pdu_length,
            contexts=[
                *verification_contexts(),
                *storage_contexts(),
                *query_contexts(),
                *retrieve_contexts(),
                *commitment_contexts(),
            ],
        )
        plain = self.settings.tls is None or self.settings.tls.plain_listener
        listener = Listener(
            server.host, server.port, server.max_associations, plain, self.reuse_port
        )
        return DimseServer(
            listener,
            policy,
            handlers,
            self.timeouts,
            auditor=self.auditor,
            gatekeeper=self.gatekeeper,
            tls=self.tls_listener,
            metrics=self.metrics,
        )

    def reload(self) -> None:
        """Re-read peers and [access] from the configuration file (SIGHUP).

        New associations get the new permissions; running ones keep what they
        negotiated. A file that does not load changes nothing.
        """
        if self.config_path is None:
            log.warning("SIGHUP: no configuration file was given, nothing to reload")
            return
        try:
            peers, profiles = reread(self.config_path, self.settings.storage.root)
        except (ConfigError, StartupError) as exc:
            log.error("configuration not reloaded, keeping the running one: %s", exc)
            return
        new = peers.settings
        for warning in new.warnings:
            log.warning("%s: %s", self.config_path, warning)
        self.gatekeeper.policy = peers.access
        self.destinations.clear()
        self.destinations.update(peers.destinations)
        self.deidentifications.profiles = profiles
        self.deidentifications.peers = peers.deidentified
        if self.tls_listener is not None:
            self.tls_listener.bound_subjects = peers.bound_subjects
        check = new.access.check_called_ae_title
        self.server.policy = dataclasses.replace(self.server.policy, check_called_ae_title=check)
        self.settings = dataclasses.replace(
            self.settings, peers=new.peers, access=new.access, deidentify=new.deidentify
        )
        ignored = needing_restart(new, self.settings)
        log.info(
            "configuration reloaded from %s: %d peers, unknown AEs may %s%s",
            self.config_path,
            len(new.peers),
            describe(new.access.unknown_peers),
            f"; changes to [{'], ['.join(ignored)}] need a restart" if ignored else "",
        )

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    async def start(self) -> None:
        """Check the store, bring the index schema to head, then listen.

        StartupError when the store root, the database or the address cannot be used;
        SchemaError for a schema from a newer pacs.
        """
        try:
            await asyncio.to_thread(probe, self.store)
        except StoreUnavailable as exc:
            raise StartupError(store_setting(self.store), str(exc)) from exc
        names = self.deidentifications.peers.values()
        self.deidentifications.profiles = await asyncio.to_thread(
            load_profiles, self.settings.deidentify, names, self.settings.storage.root
        )
        try:
            self._start_audit()
            await open_index(self.engine, self.settings)
            await self._listen()
            await self._start_metrics()
            await self._start_web()
            self._worker = asyncio.create_task(self.commitments.run(), name="commitment worker")
        except BaseException:
            await self.auditor.close()
            await self._close_index()
            raise
        self.auditor.application_started()
        gc.freeze()  # what start-up built lives on: full collections need not walk it
        log.info("pacs listening on %s as %s", self._listening(), self.settings.server.ae_title)

    async def _start_metrics(self) -> None:
        if self.metrics_endpoint is None:
            return
        try:
            await self.metrics_endpoint.start()
        except OSError as exc:
            await self.server.stop(0)
            metrics = self.settings.metrics
            port_key, host_key = "[metrics] port", "[metrics] host"
            raise listen_failure(metrics.host, metrics.port or 0, port_key, exc, host_key) from exc
        host, port = self.metrics_endpoint.address
        log.info("metrics at http://%s:%d/metrics", host, port)

    async def _start_web(self) -> None:
        if self.web is None:
            return
        try:
            await self.web.start()
        except OSError as exc:
            await self.server.stop(0)
            if self.metrics_endpoint is not None:
                await self.metrics_endpoint.stop()
            raise listen_failure(
                self.web.host, self.web.port, "[web] port", exc, "[web] host"
            ) from exc

    def _listening(self) -> str:
        listening = []
        if self.settings.tls is None or self.settings.tls.plain_listener:
            host, port = self.server.address
            listening.append(f"{host}:{port}")
        if (tls := self.server.tls_address) is not None:
            listening.append(f"{tls[0]}:{tls[1]} (TLS)")
        return " and ".join(listening)

    def _start_audit(self) -> None:
        try:
            self.auditor.start()
        except SinkUnavailable as exc:
            raise StartupError(f"[audit] {exc.key}", str(exc)) from exc

    async def _listen(self) -> None:
        try:
            await self.server.start()
        except OSError as exc:
            server = self.settings.server
            port_key, port = "[server] port", server.port
            if self.settings.tls and "[tls] port" in getattr(exc, "__notes__", ()):
                port_key, port = "[tls] port", self.settings.tls.port
            raise listen_failure(server.host, port, port_key, exc) from exc

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Refuse new associations, let running ones finish, drain commits, close the index."""
        log.info("pacs stopping: refusing new associations, %.0f s for running ones", grace)
        await self.server.stop(grace)
        if self.metrics_endpoint is not None:
            await self.metrics_endpoint.stop()
        if self.web is not None:
            await self.web.stop()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            await self.commitments.release()
        await self.commits.close()
        self.auditor.application_stopped()
        await self.auditor.close()
        await self._close_index()
        log.info("pacs stopped")

    async def _close_index(self) -> None:
        """Close the index and the thread pools, in the order the thread map gives."""
        # The writer's connections close in the writer thread, so before the pools;
        # the readers' after them, once no read still holds one.
        await self.index.close()
        await asyncio.to_thread(self.threads.close)
        await asyncio.to_thread(self.store.close)
        await self.reads.close()
        await self.engine.dispose()


async def open_index(engine: AsyncEngine, settings: Settings) -> None:
    """Connect to the index database and bring it to the newest schema.

    StartupError names the setting of the database that cannot be opened.
    """
    try:
        prepare_sqlite_directory(settings.database.url)
        await check_connection(engine)
    except StoreUnavailable as exc:
        raise StartupError(settings.database.url_source, str(exc)) from exc
    await ensure_schema(engine)


async def upgrade_database(settings: Settings) -> None:
    """`pacs db upgrade`: bring the index database to the newest schema."""
    engine = create_engine(settings.database.url)
    try:
        await open_index(engine, settings)
    finally:
        await engine.dispose()


async def run(
    settings: Settings,
    config_path: Path | None = None,
    *,
    reuse_port: bool = False,
    started: Callable[[asyncio.Event], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly; SIGHUP reloads peers and permissions.

    `started` is called once listening, with the event that stops the server (a worker's).
    """
    app = PacsApp(settings, config_path, reuse_port=reuse_port)
    await app.start()
    stop = asyncio.Event()
    if started is not None:
        started(stop)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, app.reload)
    try:
        await stop.wait()
    finally:
        await app.stop()
