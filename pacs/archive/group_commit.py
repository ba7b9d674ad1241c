"""Group commit: instances stored at the same time share one index transaction.

Each ingest waits for its own outcome; whoever arrives while a transaction is
committing joins the next one, so throughput does not hinge on one fsync per
instance and a single association still commits at once.
"""

import asyncio
from typing import Protocol

from pacs.index.records import AddOutcome, DuplicatePolicy, InstanceRecord

MAX_BATCH = 64


class InstanceIndex(Protocol):
    async def add_instances(
        self, records: list[InstanceRecord], policy: DuplicatePolicy
    ) -> list[AddOutcome]: ...


class GroupCommit:
    """Batches add_instances calls from concurrent ingests."""

    def __init__(self, index: InstanceIndex, policy: DuplicatePolicy) -> None:
        self._index = index
        self._policy = policy
        self._pending: list[tuple[InstanceRecord, asyncio.Future[AddOutcome]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def add(self, record: InstanceRecord) -> AddOutcome:
        """Index one record; return when its transaction has committed."""
        future: asyncio.Future[AddOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending())
        # The commit must finish even if this caller is cancelled: others share it.
        return await asyncio.shield(future)

    async def _commit_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                outcomes = await self._index.add_instances([r for r, _ in batch], self._policy)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def close(self) -> None:
        """Wait for the commits under way (shutdown: drain the ingest queue)."""
        if self._committer is not None:
            await asyncio.wait({self._committer})
