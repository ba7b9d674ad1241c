"""Group commit: instances stored at the same time share one index transaction.

Each ingest waits for its own outcome; whoever arrives while a transaction is
committing joins the next one, so throughput does not hinge on one fsync per
instance and a single association still commits at once.
"""

import asyncio
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, NamedTuple, Protocol

from pacs.index.records import AddOutcome, DuplicatePolicy, InstanceRecord

MAX_BATCH = 64


class _Waiting(NamedTuple):
    record: InstanceRecord
    file_stored: Future[Any] | None
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

    def __init__(self, index: InstanceIndex, policy: DuplicatePolicy) -> None:
        self._index = index
        self._policy = policy
        self._pending: list[_Waiting] = []
        self._committer: asyncio.Task[None] | None = None

    async def add(
        self, record: InstanceRecord, file_stored: Future[Any] | None = None
    ) -> AddOutcome:
        """Index one record; return when its transaction has committed.

        With `file_stored`, the record's file is still being stored: its transaction
        commits once that has succeeded, and fails, with every record it holds, if not.
        """
        future: asyncio.Future[AddOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append(_Waiting(record, file_stored, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending())
        # The commit must finish even if this caller is cancelled: others share it.
        return await asyncio.shield(future)

    async def _commit_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            records = [waiting.record for waiting in batch]
            files = [w.file_stored for w in batch if w.file_stored is not None]
            try:
                outcomes = await self._index.add_instances(records, self._policy, files)
            except Exception as exc:
                for waiting in batch:
                    if not waiting.outcome.done():
                        waiting.outcome.set_exception(exc)
                continue
            for waiting, outcome in zip(batch, outcomes, strict=True):
                if not waiting.outcome.done():
                    waiting.outcome.set_result(outcome)

    async def close(self) -> None:
        """Wait for the commits under way (shutdown: drain the ingest queue)."""
        if self._committer is not None:
            await asyncio.wait({self._committer})
