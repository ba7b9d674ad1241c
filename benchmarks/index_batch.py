"""Index.add_instances in process: time per instance and statements per batch of the write path.

Batches of 64 records (the most group commit hands over at once; --size sets another size)
of the synthetic instances of benchmarks.dataset go through the Index as the app opens it:
on SQLite its writer thread on a fresh file, on PostgreSQL its sessions on a fresh database
of our own (created and dropped here). Three passes: new instances (a few series, so that most
batches add to series that exist), the same again (identical resends), and the same UIDs
with other files under the replace policy. Usage:
python -m benchmarks.index_batch [--kind small|ct] [--size 64] [--batches N] [--engine ...]

Per pass: wall and CPU time (this process, writer thread included; not PostgreSQL's) per
instance, and per batch the statements the database ran (SQLite: its trace callback, an
executemany counting once per parameter set; PostgreSQL: SQLAlchemy's cursor executions,
an executemany counting once) and, on SQLite, the calls into sqlite3 (execute,
executemany, commit). Counting is on for every batch; it costs a little on each.
"""

import argparse
import asyncio
import hashlib
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian
from sqlalchemy import event

from benchmarks import postgres
from benchmarks.dataset import Kind, ct_instance, placements, small_instance
from pacs.archive.records import record_for
from pacs.dicom.header import split_by_level
from pacs.index.engine import create_engine, create_sessionmaker, create_sqlite_sync_engine
from pacs.index.records import DuplicatePolicy, InstanceRecord
from pacs.index.repository import Index
from pacs.index.schema import upgrade_to_head
from pacs.index.transactions import SqliteWriterThread
from pacs.store.blobstore import BlobRef

_NO_PIXELS = np.zeros((16, 16), np.float32)
BATCHES_PER_STUDY = 4  # a study has one series; a patient two studies


@dataclass
class Counts:
    statements: int = 0
    calls: int = 0


class _CountingConnection(sqlite3.Connection):
    """A sqlite3 connection that counts the calls made into it."""

    counts = Counts()

    def execute(self, *args: Any) -> sqlite3.Cursor:
        self.counts.calls += 1
        return super().execute(*args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        self.counts.calls += 1
        return super().executemany(*args)

    def commit(self) -> None:
        self.counts.calls += 1
        super().commit()


def records(kind: Kind, size: int, count: int, seed: int) -> list[InstanceRecord]:
    """`count` batches of `size` index records of synthetic instances over a few studies."""
    studies = max(1, count // BATCHES_PER_STUDY)
    count *= size
    made = []
    for where in placements(count, studies, max(1, studies // 2)):
        # The index never sees pixels: a CT's header on a small image.
        if kind is Kind.CT:
            ds = ct_instance(seed, where, _NO_PIXELS)
        else:
            ds = small_instance(seed, where)
        levels = split_by_level(ds)
        made.append(record_for(levels, ExplicitVRLittleEndian, _blob(ds.SOPInstanceUID), "BENCH"))
    return made


def _blob(content: str) -> BlobRef:
    return BlobRef(hashlib.sha256(content.encode()).hexdigest(), 1 << 20)


def batches(made: list[InstanceRecord], size: int) -> Iterator[list[InstanceRecord]]:
    for start in range(0, len(made), size):
        yield made[start : start + size]


async def run_passes(
    index: Index, made: list[InstanceRecord], size: int, counts: Counts
) -> list[str]:
    replaced = [replace(r, blob=_blob(r.sop_instance_uid + "/2")) for r in made]
    passes = [
        ("new", made, DuplicatePolicy.KEEP),
        ("identical", made, DuplicatePolicy.KEEP),
        ("replace", replaced, DuplicatePolicy.REPLACE),
    ]
    lines = []
    for name, pass_records, policy in passes:
        wall = cpu = 0.0
        before = replace(counts)
        for batch in batches(pass_records, size):
            w0, c0 = time.perf_counter(), time.process_time()
            await index.add_instances(batch, policy)
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
        n = len(pass_records)
        b = -(-n // size)
        statements = (counts.statements - before.statements) / b
        calls = (counts.calls - before.calls) / b
        calls_text = f"{calls:.1f}" if calls else "-"
        lines.append(
            f"{name:<10} {1e6 * wall / n:9.0f} {1e6 * cpu / n:9.0f}"
            f" {statements:11.1f} {calls_text:>9}"
        )
    return lines


@dataclass(frozen=True)
class Workload:
    size: int
    made: list[InstanceRecord]
    warmup: list[InstanceRecord]  # another patient's, added first: statements compiled


async def sqlite_run(work: Workload) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'index.db'}"
        engine = create_engine(url)
        await upgrade_to_head(engine)
        write_engine = create_sqlite_sync_engine(url)
        assert write_engine is not None
        counts = Counts()
        _CountingConnection.counts = counts

        @event.listens_for(write_engine, "do_connect")
        def _factory(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
            cparams["factory"] = _CountingConnection

        @event.listens_for(write_engine, "connect")
        def _trace(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
            dbapi_connection.set_trace_callback(lambda _sql: _count_statement(counts))

        writer = ThreadPoolExecutor(1, thread_name_prefix="index-writer")
        index = Index(create_sessionmaker(engine), SqliteWriterThread(write_engine, writer))
        try:
            await index.add_instances(work.warmup, DuplicatePolicy.KEEP)
            return await run_passes(index, work.made, work.size, counts)
        finally:
            await index.close()
            writer.shutdown()
            await engine.dispose()


def _count_statement(counts: Counts) -> None:
    counts.statements += 1


async def postgres_run(url: str, work: Workload) -> list[str]:
    engine = create_engine(url)
    await upgrade_to_head(engine)
    counts = Counts()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        counts.statements += 1

    index = Index(create_sessionmaker(engine))
    try:
        await index.add_instances(work.warmup, DuplicatePolicy.KEEP)
        return await run_passes(index, work.made, work.size, counts)
    finally:
        await index.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=[k.value for k in Kind], default=Kind.SMALL.value)
    parser.add_argument("--size", type=int, default=64, help="records per batch")
    parser.add_argument("--batches", type=int, default=16, help="batches per pass")
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    kind = Kind(args.kind)
    work = Workload(
        args.size,
        records(kind, args.size, args.batches, seed=1),
        records(kind, args.size, 1, seed=2),
    )
    what = f"{kind.value}, {args.batches} batches of {args.size}; per instance, per batch"
    header = f"{'pass':<10} {'µs wall':>9} {'µs CPU':>9} {'stmts/b':>11} {'calls/b':>9}"
    if args.engine in ("sqlite", "both"):
        print(f"SQLite {sqlite3.sqlite_version}, {what}")
        print(header)
        print("\n".join(asyncio.run(sqlite_run(work))))
    if args.engine in ("postgresql", "both"):
        why = postgres.unavailable()
        if why is not None:
            print(f"PostgreSQL skipped: {why}")
            return
        name = postgres.create_database()
        try:
            print(f"PostgreSQL {postgres.server_version()}, {what}")
            print(header)
            print("\n".join(asyncio.run(postgres_run(postgres.database_url(name), work))))
        finally:
            postgres.drop_database(name)


if __name__ == "__main__":
    main()
