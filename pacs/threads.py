"""The thread map: which work runs where, and why; and the pools, created and closed by app.py.

Everything async runs on one event loop in the main thread: every association task
(`net/`), the archive services they call, the group-commit task (`archive/group_commit.py`),
the commitment worker, and all PostgreSQL I/O (asyncpg). Work leaves the loop only where it
would block it, into one of these threads:

- **The loop's default executor** (`asyncio.to_thread`; created and shut down by
  `asyncio.run`). Blocking file work of one request: a C-STORE's bytes written to its
  staging file and its header parsed (`archive/ingest.py`, about one hop per MiB; a data
  set under 256 KiB that arrives whole is written and parsed on the loop itself), a
  retrieve's file reads and transcoding (`archive/retrieve.py`, a batch of instances per
  hop), a commitment's re-hash or existence check (`archive/commitment.py`), the store
  probe at start (`app.py`), joining the audit sinks at stop (`audit/auditor.py`), and the
  free space under the store root measured for a metrics scrape (`metrics/probes.py`; the
  metrics endpoint itself is a server on the loop, `metrics/endpoint.py`); also asyncio's
  own name lookups when an outbound association connects.
- **pacs-commit** (`store_commits`, 16 threads). One job per blob (`BlobWriter`,
  `store/blobstore.py`): its staging file's fsync; the rename to its address and the
  directory's fsync; last, after its answer, a staging file created ahead for a blob to
  come (`store/staging.py`). A small instance's job starts once its header has passed
  (`commit_in_background`), with nothing to wait for; a large one's starts as soon as its
  last byte is written (`start_sync`), so the disk works while the header is read back,
  and waits for the header's verdict (`commit_in_background`, or `discard`) before the
  rename. fsync releases the GIL; many run at
  once on a busy disk. A job waits for its verdict, which never waits for a job of
  this pool: a pool shared by sync and commit cannot fill with waiters. With the S3
  backend (`store/s3_store.py`) a job is submitted once the verdict is given and uploads
  the staging file, or the bytes of a small instance held in memory (obstore's blocking
  PUT, which releases the GIL), then lets them go; when the object was there already, a
  second job once the index committed checks with a HEAD that it still is, and only then
  lets them go (`S3Blob.confirm`, `store/s3_staged.py`).
- **pacs-index-writer** (`index_writer`, 1 thread, SQLite only). Every index write
  transaction (`index/transactions.py`): SQLite admits one writer, so one thread keeps
  writers from waiting on each other's lock and keeps the connection in one thread. A
  batch of C-STOREs holds its transaction open until the blob commits of its instances
  are done (the `StagedInstance` hand-off, `archive/staged.py`): it commits only once every
  file it describes is durable.
- **pacs-index-reader** (`index_readers`, 4 threads, SQLite only). C-FIND and retrieve
  pages (`index/reads.py`): SQLite reads in C without the GIL, so two threads keep both
  cores busy and a few more keep a long C-FIND from holding up a short one.
- **aiosqlite's connection threads** (SQLite only; aiosqlite starts one per connection of
  the async engine, which app.py creates and disposes of). The statements that do not run
  in the index pools: schema migration, the commitment ledger, single-instance lookups.
- **pacs-verify** (`os.cpu_count()` threads, `pacs verify` only; created and closed by
  `admin.py`). Re-hashing stored blobs (`archive/verify.py`): hashing releases the GIL, so
  one thread per core reads and hashes at the disk's speed; a bounded number of files is in
  flight at once. The store listing runs in the default executor, one `ab/` directory a hop.
- **pacs reindex's parsing processes** (`--workers`, default one per core but one; created
  and closed by `admin_rebuild.py`). Parsing stored headers (`archive/reindex.py`) is
  Python holding the GIL, so it goes to processes, forked before the command starts any
  thread; the records come back to the loop, which writes them through the index writer
  one batch at a time. With `--workers 0`, one **pacs-reindex** thread parses instead.
  `pacs import` builds the same pools as serve and reads files in the default executor,
  one chunk a hop (`archive/file_import.py`).
- **One thread per audit sink** (`audit/sinks.py`), fed by a queue: the loop only appends.
  Started by `Auditor.start()` and joined by `Auditor.close()`, which app.py calls.

Crossings from the loop to these threads: `asyncio.to_thread` in `archive/ingest.py`,
`archive/retrieve.py`, `archive/commitment.py`, `audit/auditor.py`, `metrics/probes.py`
and `app.py`;
`run_in_executor` on the index pools in `index/transactions.py` and `index/reads.py`; a
queue put in `audit/auditor.py` (`Sink.put`). The store's pool is submitted to by
`BlobWriter` (and the S3 backend's blobs), called by ingest in the default executor, or on
the loop for a small instance, and for the S3 backend's confirmation (`archive/ingest.py`).
Between threads (`concurrent.futures.Future`): the index writer waits once for all the
pacs-commit futures of its batch (one wake-up per batch), and a pacs-commit job for its
large blob's verdict (given in the default executor by ingest once the header has passed,
or by its discard). The loop awaits a batch's pacs-commit futures itself on PostgreSQL
(`index/transactions.py`), woken once by the last of them, and with `asyncio.wrap_future`
after a batch that failed (`archive/group_commit.py`, to tell which files failed).

`ThreadPools` is created by `PacsApp` (tests create their own): nothing starts at import,
and a pool starts its threads only when work is first submitted to it. `PacsApp.stop`
closes in this order: associations end, group commit drains, the audit sinks are joined,
the index writer closes its connections in its own thread, then the pools end, each
finishing the work it was given (writer, readers, commits: a waiter before what it
waits for), then the store removes its spare staging files, and last the reader
connections and the engines close.
"""

from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Self

# Threads for store commits: enough for every association storing at once to have its
# file in flight while the disk queues them.
STORE_THREADS = 16
# SQLite reads run in C without the GIL: two threads keep both cores busy, a few more
# let a long C-FIND not hold up a short one.
INDEX_READER_THREADS = 4


class ThreadPools:
    """The archive's thread pools, by job; close() waits for the work under way, then ends them."""

    def __init__(self) -> None:
        self.store_commits = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="pacs-commit")
        self.index_writer = ThreadPoolExecutor(1, thread_name_prefix="pacs-index-writer")
        self.index_readers = ThreadPoolExecutor(
            INDEX_READER_THREADS, thread_name_prefix="pacs-index-reader"
        )

    def close(self) -> None:
        """Let submitted work finish, then end every thread. Blocking: callers on the loop
        use asyncio.to_thread."""
        # Writers before the store: a write waits for blob commits, never the reverse.
        for pool in (
            self.index_writer,
            self.index_readers,
            self.store_commits,
        ):
            pool.shutdown(wait=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
