"""Composition root of `pacs reindex` and `pacs import`: what each needs, built, run and closed.

A sibling of `pacs.admin` (verify) and `pacs.app` (serve). Both commands write through
the archive's own write path, so both may run beside a `pacs serve` on the same store
and database: blobs are content-addressed and renamed into place atomically, and index
writes are race-safe upserts (PostgreSQL) or queue on SQLite's write lock.
"""

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pydicom.config

from pacs.archive.disk_files import walk
from pacs.archive.file_import import FileImport, ImportReport
from pacs.archive.file_import import Progress as ImportProgress
from pacs.archive.group_commit import GroupCommit
from pacs.archive.ingest import Ingest
from pacs.archive.reindex import Progress as ReindexProgress
from pacs.archive.reindex import ReindexReport, rebuild_policy, reindex, stored_blobs
from pacs.config import Settings
from pacs.errors import StartupError, StoreUnavailable
from pacs.index.engine import (
    AsyncEngine,
    PoolLimits,
    check_connection,
    create_engine,
    prepare_sqlite_directory,
)
from pacs.index.presence import Presence
from pacs.index.repository import Index
from pacs.index.schema import ensure_schema
from pacs.net.contexts import storage_sop_classes, storage_transfer_syntaxes
from pacs.store.backends import open_store
from pacs.store.blobstore import FileBlobStore
from pacs.threads import ThreadPools


def trust_pydicom_values() -> None:
    """Read values as `pacs serve` does (see `pacs.app._trust_pydicom_values`): no
    per-value validation, which costs a regex per UID and string of every header."""
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE


def _limits(settings: Settings) -> PoolLimits:
    return PoolLimits(connect_timeout=settings.database.connect_timeout)


async def _open_database(url: str, source: str, settings: Settings) -> AsyncEngine:
    """Connect to the database at `url` and migrate it to the newest schema."""
    engine = create_engine(url, _limits(settings))
    try:
        prepare_sqlite_directory(url)
        await check_connection(engine)
        await ensure_schema(engine)
    except StoreUnavailable as exc:
        await engine.dispose()
        raise StartupError(source, str(exc)) from exc
    except BaseException:
        await engine.dispose()
        raise
    return engine


def _check_root(settings: Settings) -> Path:
    root = settings.storage.root
    if settings.storage.backend == "s3":
        root.mkdir(parents=True, exist_ok=True)  # staging files only
    if not root.is_dir():
        raise StartupError("[storage] root", f"{root} is not a directory")
    return root


def parsing_pool(workers: int) -> Executor:
    """Where headers are parsed: `workers` processes, since parsing is Python holding the
    GIL (threads would take turns on one core); with 0, one thread of this process.

    The processes are forked, so they start at once with pacs imported and pydicom set
    as here; start_workers() forks them all, and must run before this process starts
    any thread (a fork copies no thread, and a lock one held stays held in the child).
    """
    if workers < 1:
        return ThreadPoolExecutor(1, thread_name_prefix="pacs-reindex")
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))


def default_workers() -> int:
    """One parsing process per core but one: this process needs a core of its own to
    take the parsed records in and write them to the index."""
    return max(0, (os.cpu_count() or 1) - 1)


def start_workers(pool: Executor) -> None:
    """Start the pool's workers now (a process pool forks every worker on its first job)."""
    pool.submit(os.getpid).result()


async def reindex_archive(
    settings: Settings,
    into: str | None = None,
    *,
    workers: int | None = None,
    progress: ReindexProgress | None = None,
) -> ReindexReport:
    """`pacs reindex`: index every blob of the store into an empty database.

    The database is `into` or the configured one, created and migrated when new.
    StartupError when it already holds instances: a rebuild into a live index would
    mix two histories, so it goes beside it (--into) or into a fresh one.
    """
    trust_pydicom_values()
    if settings.storage.backend == "s3":
        # Reindex orders blobs by their files' write times and parses them in place.
        raise StartupError("[storage] backend", "pacs reindex reads a filesystem store only")
    _check_root(settings)
    workers = default_workers() if workers is None else workers
    with parsing_pool(workers) as parsing:
        start_workers(parsing)  # before the database's and the loop's threads
        url = into or settings.database.url
        source = "--into" if into else settings.database.url_source
        engine = await _open_database(url, source, settings)
        try:
            return await _reindex(
                settings, engine, source, parsing, workers=workers, progress=progress
            )
        finally:
            await engine.dispose()


async def _reindex(
    settings: Settings,
    engine: AsyncEngine,
    source: str,
    parsing: Executor,
    *,
    workers: int,
    progress: ReindexProgress | None,
) -> ReindexReport:
    with ThreadPools() as pools:
        index = Index.open(engine, pools.index_writer, _limits(settings))
        try:
            if held := await index.count_instances():
                raise StartupError(
                    source,
                    f"the database already indexes {held} instances; reindex fills an "
                    "empty one: give --into a new database, or remove this one first",
                )
            store = FileBlobStore(settings.storage.root, commits=pools.store_commits)
            blobs = await stored_blobs(store)
            policy = rebuild_policy(settings.storage.duplicate_policy)
            return await reindex(
                store.paths, blobs, index, policy, parsing, workers=workers, progress=progress
            )
        finally:
            await index.close()


def admission(sop_class_uid: str, transfer_syntax_uid: str) -> str | None:
    """Why `pacs serve` would not accept this SOP Class and transfer syntax; None if it would."""
    if sop_class_uid not in _STORAGE_SOP_CLASSES:
        return f"SOP Class {sop_class_uid} is not a Storage SOP Class this archive accepts"
    if transfer_syntax_uid not in _TRANSFER_SYNTAXES:
        return f"transfer syntax {transfer_syntax_uid} is not one this archive accepts"
    return None


_STORAGE_SOP_CLASSES = frozenset(storage_sop_classes())
_TRANSFER_SYNTAXES = frozenset(storage_transfer_syntaxes())


async def import_paths(
    settings: Settings, paths: Sequence[Path], *, progress: ImportProgress | None = None
) -> ImportReport:
    """`pacs import`: store the Part 10 files under `paths` as C-STORE would."""
    trust_pydicom_values()
    storage = settings.storage
    root = _check_root(settings)
    engine = await _open_database(settings.database.url, settings.database.url_source, settings)
    try:
        found = await asyncio.to_thread(walk, list(paths))
        with ThreadPools() as pools:
            index = Index.open(engine, pools.index_writer, _limits(settings))
            store = open_store(
                root,
                storage.s3 if storage.backend == "s3" else None,
                commits=pools.store_commits,
                fsync=storage.fsync,
                min_free_bytes=storage.min_free_bytes,
            )
            commits = GroupCommit(index, storage.duplicate_policy)
            run = FileImport(Ingest(store, commits), Presence(engine), admission, progress)
            try:
                return await run.run(found)
            finally:
                await commits.close()
                await index.close()
    finally:
        await engine.dispose()
