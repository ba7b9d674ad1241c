"""Composition root of the admin commands: builds what one command needs, runs it, closes it.

A sibling of `pacs.app` (which builds the running server): an admin command opens the
index and the store itself, beside a `pacs serve` that may be running on them.
"""

import asyncio
import contextlib
import dataclasses
import getpass
import os
import socket
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pacs.archive.deidentification import Deidentifications, load_profiles
from pacs.archive.deletion import Confirm, DeleteOutcome, delete
from pacs.archive.export import ExportReport, export
from pacs.archive.gc import GcReport, collect
from pacs.archive.verify import Progress, VerifyReport, verify
from pacs.audit.auditor import Auditor
from pacs.audit.events import Node
from pacs.audit.trail import build_auditor
from pacs.config import Settings
from pacs.dicom.levels import QueryLevel
from pacs.dicom.selection import Selection as RetrieveSelection
from pacs.errors import ConfigError, StartupError, StoreUnavailable
from pacs.index.deletion import Deletions, Selection
from pacs.index.engine import AsyncEngine, PoolLimits, check_connection, create_engine, sqlite_file
from pacs.index.inventory import Inventory
from pacs.index.locate import Locator, patient_study_uids
from pacs.index.reads import Reads, open_reads
from pacs.index.repository import Index
from pacs.index.schema import check_schema
from pacs.store.backends import AnyStore, listing, open_store, sweeper
from pacs.store.export_dir import ExportDirectory
from pacs.threads import ThreadPools


@contextlib.asynccontextmanager
async def _existing_index(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on the index database as it is (nothing created or migrated), disposed after.

    StartupError when the store root or the database cannot be opened, SchemaError when
    the database is not at this pacs's schema.
    """
    storage, database = settings.storage, settings.database
    if storage.backend == "filesystem" and not storage.root.is_dir():
        raise StartupError("[storage] root", f"{storage.root} is not a directory")
    if (path := sqlite_file(database.url)) is not None and not path.is_file():
        raise StartupError(database.url_source, f"the SQLite database {path} does not exist")
    engine = create_engine(database.url, PoolLimits(connect_timeout=database.connect_timeout))
    try:
        try:
            await check_connection(engine)
        except StoreUnavailable as exc:
            raise StartupError(database.url_source, str(exc)) from exc
        await check_schema(engine)
        yield engine
    finally:
        await engine.dispose()


async def verify_archive(
    settings: Settings, *, sample_percent: float = 100.0, progress: Progress | None = None
) -> VerifyReport:
    """`pacs verify`: check the index and the store against each other and re-hash blobs.

    StartupError when the store root or the database cannot be opened, SchemaError when
    the database is not at this pacs's schema; nothing is created or migrated.
    """
    async with _existing_index(settings) as engine:
        # Hashing releases the GIL: one thread per core keeps every core busy.
        threads = os.cpu_count() or 1
        with (
            ThreadPools() as pools,
            ThreadPoolExecutor(threads, thread_name_prefix="pacs-verify") as hashing,
        ):
            store = _store(settings, pools)
            return await verify(
                Inventory(engine),
                listing(store),
                hashing,
                threads,
                sample_percent=sample_percent,
                progress=progress,
            )


async def collect_garbage(
    settings: Settings, *, dry_run: bool = False, progress: Progress | None = None
) -> GcReport:
    """`pacs gc`: remove unreferenced blobs and stale staging files (see `pacs.archive.gc`).

    StoreUnavailable when another `pacs gc` is running on the same store.
    """
    async with _existing_index(settings) as engine:
        with ThreadPools() as pools:
            store = _store(settings, pools)
            removals = sweeper(store)
            with removals.exclusive():
                return await collect(
                    Inventory(engine),
                    listing(store),
                    removals,
                    dry_run=dry_run,
                    progress=progress,
                )


def _store(settings: Settings, pools: ThreadPools) -> AnyStore:
    """The store [storage] names, for an admin command (nothing made ahead, nothing probed)."""
    storage = settings.storage
    s3 = storage.s3 if storage.backend == "s3" else None
    return open_store(storage.root, s3, commits=pools.store_commits)


def _operator() -> Node:
    """Who runs the command, for the audit trail: the login name on this host."""
    try:
        user = getpass.getuser()
    except OSError:  # no name for this uid (a container)
        user = str(os.getuid())
    return Node(user, socket.gethostname())


async def delete_from_index(
    settings: Settings, selection: Selection, confirm: Confirm
) -> DeleteOutcome:
    """`pacs delete`: remove what `selection` names from the index, once `confirm` agrees.

    Audited through [audit] like the server's own events.
    """
    async with _existing_index(settings) as engine:
        auditor = build_auditor(settings.audit, settings.server.ae_title)
        auditor.start()
        try:
            return await delete(Deletions(engine), auditor, _operator(), selection, confirm)
        finally:
            await auditor.close()


# --- pacs export ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ExportRequest:
    """What `pacs export` writes: a study, or a patient's studies, under a profile, where."""

    profile: str
    directory: Path
    study_uid: str | None = None
    patient_id: str | None = None
    issuer: str = ""


async def export_deidentified(
    settings: Settings, request: ExportRequest, progress: Callable[[int | None, int], None]
) -> ExportReport:
    """`pacs export --deidentify`: write de-identified Part 10 files, keep their mapping in the
    index and audit the export. `progress(total, done)`: total first (None), then each done.

    ConfigError for a profile that is not configured.
    """
    if request.profile not in settings.deidentify:
        defined = ", ".join(sorted(settings.deidentify))
        raise ConfigError(f"--deidentify: no profile {request.profile!r} (defined: {defined})")
    profiles = await asyncio.to_thread(
        load_profiles, settings.deidentify, [request.profile], settings.storage.root
    )
    async with _existing_index(settings) as engine:
        with ThreadPools() as pools:
            reads = open_reads(engine, threads=pools.index_readers)
            index = Index.open(engine, pools.index_writer)
            auditor = build_auditor(settings.audit, settings.server.ae_title)
            auditor.start()
            try:
                store = _store(settings, pools)
                deidentifications = Deidentifications(profiles, {}, index)
                return await _export(
                    request, reads, store, deidentifications, auditor, progress=progress
                )
            finally:
                await auditor.close()
                await index.close()
                await reads.close()


async def _export(
    request: ExportRequest,
    reads: Reads,
    store: AnyStore,
    deidentifications: Deidentifications,
    auditor: Auditor,
    *,
    progress: Callable[[int | None, int], None],
) -> ExportReport:
    """Export under an open index and auditor: the export goes to `export:<profile>` on
    this host, from the user who runs it."""
    selection = await _export_selection(reads, request)
    locator = Locator(reads)
    total, _ = await locator.summary(selection)
    progress(total, 0)
    transfer = auditor.transfer(
        _operator(), Node(f"export:{request.profile}", socket.gethostname())
    )
    report = await export(
        locator,
        store,
        selection,
        deidentifications.start(request.profile),
        ExportDirectory(request.directory),
        deidentifications=deidentifications,
        transfer=transfer,
        progress=lambda done: progress(None, done),
    )
    transfer.finished(
        len(report.refused),
        f"export of {report.written} instances to {request.directory}, "
        f"de-identified under profile {request.profile!r}",
    )
    return report


async def _export_selection(reads: Reads, request: ExportRequest) -> RetrieveSelection:
    if request.study_uid is not None:
        return RetrieveSelection(QueryLevel.STUDY, study_uids=(request.study_uid,))
    patient_id = request.patient_id or ""
    studies = await patient_study_uids(reads, patient_id, request.issuer)
    # No study: a selection that names none, rather than every instance.
    return RetrieveSelection(QueryLevel.STUDY, study_uids=studies or ("",))
