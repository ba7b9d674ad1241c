"""The Index: the catalogue's operations, one session and one transaction per call."""

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Self

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pacs.index.database_errors import index_errors as _index_errors
from pacs.index.database_errors import reason as _reason
from pacs.index.deidentified import write_mappings
from pacs.index.engine import (
    PoolLimits,
    create_sessionmaker,
    create_sqlite_sync_engine,
    create_write_engine,
)
from pacs.index.models import Instance, Patient, Series, Study
from pacs.index.records import AddKind, AddOutcome, DuplicatePolicy, InstanceRecord, InstanceRow
from pacs.index.transactions import (
    PostgresTransactions,
    Prerequisites,
    SessionTransactions,
    SqliteWriterThread,
    WriteTransactions,
)
from pacs.index.upsert import add_batch, lock_order
from pacs.index.upsert_sql import ParentRemoved

log = logging.getLogger(__name__)

# Deadlock and serialization failures on PostgreSQL: the transaction did
# nothing and may simply be run again. Batches lock rows in a fixed order, so
# this is rare; a random pause stops the same writers from colliding again.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
_ATTEMPTS = 5
_RETRY_PAUSE_S = 0.05


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or "")


def _is_transient(exc: DBAPIError) -> bool:
    return _sqlstate(exc) in _TRANSIENT_SQLSTATES


def _refuses_record(exc: DBAPIError) -> bool:
    """Tell whether the database refused the values written rather than the work itself."""
    # asyncpg's data exceptions (SQLSTATE class 22, e.g. a NUL character in a
    # string) reach us as plain DBAPIError, hence the SQLSTATE classes too.
    return isinstance(exc, IntegrityError | DataError) or _sqlstate(exc)[:2] in {"22", "23"}


class Index:
    """The catalogue of patients, studies, series and instances.

    Database failures surface as StoreUnavailable; SQLAlchemy never leaks out.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        transactions: WriteTransactions | None = None,
    ) -> None:
        """Read through sessionmaker; write through transactions (default: the same sessions)."""
        self._sessionmaker = sessionmaker
        self._transactions = transactions or SessionTransactions(sessionmaker)

    @classmethod
    def open(cls, engine: AsyncEngine, writer: Executor, limits: PoolLimits | None = None) -> Self:
        """Create the Index of engine, writing a SQLite file from the single-thread `writer`
        (unused on other databases), PostgreSQL through an engine of its own with `limits`;
        close() it before shutting `writer` down."""
        sessionmaker = create_sessionmaker(engine)
        sqlite_engine = create_sqlite_sync_engine(engine.url)
        if sqlite_engine is not None:
            return cls(sessionmaker, SqliteWriterThread(sqlite_engine, writer))
        postgres_engine = create_write_engine(engine.url, limits or PoolLimits())
        if postgres_engine is None:
            return cls(sessionmaker)
        return cls(sessionmaker, PostgresTransactions(postgres_engine))

    async def close(self) -> None:
        """Release what the Index created for writing (the caller disposes its engine)."""
        await self._transactions.close()

    async def add_instances(
        self,
        records: Sequence[InstanceRecord],
        policy: DuplicatePolicy | str,
        files_stored: Prerequisites = (),
    ) -> list[AddOutcome]:
        """Index a batch of instances in one transaction; outcomes in input order.

        One commit for many instances is what makes group commit possible: the
        caller batches concurrent C-STOREs. A record the database refuses on its
        own (a value it cannot hold) gets AddKind.FAILED without failing the rest.
        The rows are written while the instances' files are still being stored and
        committed once `files_stored` have all succeeded; if one fails, nothing is
        committed and its exception is raised.
        """
        policy = DuplicatePolicy(policy)
        if not records:
            return []
        with _index_errors():
            try:
                return await self._add_retrying(records, policy, files_stored, isolate=False)
            except DBAPIError as exc:
                if not _refuses_record(exc):
                    raise
                # Redo with a savepoint per record so that only the culprit fails.
                log.info("index batch refused (%s); retrying record by record", _reason(exc))
                return await self._add_retrying(records, policy, files_stored, isolate=True)

    async def _add_retrying(
        self,
        records: Sequence[InstanceRecord],
        policy: DuplicatePolicy,
        files_stored: Prerequisites,
        isolate: bool,
    ) -> list[AddOutcome]:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await self._add_batch(records, policy, files_stored, isolate)
            except ParentRemoved as exc:
                if attempt == _ATTEMPTS:
                    raise
                log.info("index batch attempt %d: %s; retrying", attempt, exc)
            except DBAPIError as exc:
                if attempt == _ATTEMPTS or not _is_transient(exc):
                    raise
                log.info("index batch attempt %d hit %s; retrying", attempt, _reason(exc))
                await asyncio.sleep(random.uniform(0, _RETRY_PAUSE_S * attempt))
        raise AssertionError("unreachable")

    async def _add_batch(
        self,
        records: Sequence[InstanceRecord],
        policy: DuplicatePolicy,
        files_stored: Prerequisites,
        isolate: bool,
    ) -> list[AddOutcome]:
        write = _write_isolated if isolate else add_batch
        return await self._transactions.run(
            partial(write, records=records, policy=policy, now=datetime.now(UTC)), files_stored
        )

    async def get_instance(self, sop_instance_uid: str) -> InstanceRow | None:
        """Return the indexed instance with this SOP Instance UID, if any."""
        query = (
            select(
                Instance.sop_instance_uid,
                Instance.sop_class_uid,
                Instance.transfer_syntax_uid,
                Instance.instance_number,
                Instance.blob_sha256,
                Instance.blob_size,
                Study.study_instance_uid,
                Series.series_instance_uid,
                Instance.received_at,
                Instance.source_ae_title,
                Instance.attributes,
                Patient.patient_id,
            )
            .join(Series, Instance.series_fk == Series.id)
            .join(Study, Series.study_fk == Study.id)
            .join(Patient, Study.patient_fk == Patient.id)
            .where(Instance.sop_instance_uid == sop_instance_uid)
        )
        with _index_errors():
            async with self._sessionmaker() as session:
                row = (await session.execute(query)).one_or_none()
        if row is None:
            return None
        instance = InstanceRow(*row)
        # SQLite keeps timestamps without a zone; they were written in UTC.
        if instance.received_at.tzinfo is None:
            instance = replace(instance, received_at=instance.received_at.replace(tzinfo=UTC))
        return instance

    async def count_instances(self) -> int:
        """Return how many instances the index holds."""
        with _index_errors():
            async with self._sessionmaker() as session:
                return int(await session.scalar(select(func.count()).select_from(Instance)) or 0)

    async def record_deidentified(
        self,
        scope: str,
        uids: Mapping[str, str],
        patients: Mapping[tuple[str, str], tuple[str, int]],
    ) -> None:
        """Keep the UIDs and patients de-identification under `scope` replaced, in one
        transaction; rows already there stay as they are."""
        with _index_errors():
            await self._transactions.run(write_mappings(scope, uids, patients))

    async def referenced_blobs(self) -> set[str]:
        """Return the address of every file some instance points to (for verify and gc)."""
        with _index_errors():
            async with self._sessionmaker() as session:
                result = await session.scalars(select(Instance.blob_sha256).distinct())
                return set(result)


def _write_isolated(
    conn: Connection, records: Sequence[InstanceRecord], policy: DuplicatePolicy, now: datetime
) -> list[AddOutcome]:
    """Add each record under a savepoint of its own, so that a refused one fails alone."""
    outcomes: dict[int, AddOutcome] = {}
    for i in lock_order(records):
        record = records[i]
        try:
            with conn.begin_nested():
                outcomes[i] = add_batch(conn, [record], policy, now)[0]
        except DBAPIError as exc:
            if not _refuses_record(exc):
                raise
            reason = _reason(exc)
            log.warning("instance %s not indexed: %s", record.sop_instance_uid, reason)
            outcomes[i] = AddOutcome(AddKind.FAILED, record.sop_instance_uid, reason=reason)
    return [outcomes[i] for i in range(len(records))]
