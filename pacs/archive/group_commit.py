"""Group commit: instances stored at the same time share one index transaction.

Each ingest waits for its own outcome; whoever arrives while a transaction is
committing joins the next one, so throughput does not hinge on one fsync per
instance and a single association still commits at once.
"""

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, NamedTuple, Protocol

from pacs.archive.staged import StagedInstance
from pacs.index.records import AddKind, AddOutcome, DuplicatePolicy, InstanceRecord

MAX_BATCH = 64


class _Waiting(NamedTuple):
    staged: StagedInstance
    outcome: asyncio.Future[AddOutcome]


class InstanceIndex(Protocol):
    async def add_instances(
        self,
        records: list[InstanceRecord],
        policy: DuplicatePolicy,
        files_stored: Sequence[Future[Any]] = (),
    ) -> list[AddOutcome]: ...


class GroupCommit:
    """Batches add_instances calls from concurrent ingests."""

    def __init__(
        self,
        index: InstanceIndex,
        policy: DuplicatePolicy,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        """`on_batch` hears, for each transaction that committed, how many instances it
        had and how many of them were new to the index (the metrics)."""
        self._index = index
        self._on_batch = on_batch
        self._policy = policy
        self._pending: list[_Waiting] = []
        self._committer: asyncio.Task[None] | None = None

    async def add(self, staged: StagedInstance) -> AddOutcome:
        """Index one instance; return when its transaction has committed.

        The transaction commits once the instance's file is stored. A file that fails
        fails its own instance with the store's error and commits none of its rows.
        """
        future: asyncio.Future[AddOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append(_Waiting(staged, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending())
        # The commit must finish even if this caller is cancelled: others share it.
        return await asyncio.shield(future)

    async def _commit_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            records = [waiting.staged.record for waiting in batch]
            files = [waiting.staged.stored for waiting in batch]
            try:
                outcomes = await self._index.add_instances(records, self._policy, files)
            except Exception as exc:
                self._pending[:0] = await _fail(batch, exc)
                continue
            if self._on_batch is not None:
                self._on_batch(len(batch), sum(o.kind == AddKind.STORED for o in outcomes))
            for waiting, outcome in zip(batch, outcomes, strict=True):
                if not waiting.outcome.done():
                    waiting.outcome.set_result(outcome)

    async def close(self) -> None:
        """Wait for the commits under way (shutdown: drain the ingest queue)."""
        if self._committer is not None:
            await asyncio.wait({self._committer})


async def _fail(batch: list[_Waiting], exc: Exception) -> list[_Waiting]:
    """Fail the instances a rolled-back batch failed for; return the rest, to commit again.

    A file that could not be stored rolls back the batch it was in: its own instance
    fails with the store's error, and the others, whose files are stored, go into the
    next transaction. Any other failure (the database's) fails every instance with it.
    """
    done, _ = await asyncio.wait([asyncio.wrap_future(w.staged.stored) for w in batch])
    for wrapped in done:
        if not wrapped.cancelled():
            wrapped.exception()  # read below from each instance's own future, not lost
    again = []
    for waiting in batch:
        failure = waiting.staged.failure()
        if failure is None:
            again.append(waiting)
        elif not waiting.outcome.done():
            waiting.outcome.set_exception(failure)
    if len(again) < len(batch):
        return again
    for waiting in batch:
        if not waiting.outcome.done():
            waiting.outcome.set_exception(exc)
    return []
