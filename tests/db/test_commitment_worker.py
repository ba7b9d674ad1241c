"""The Storage Commitment worker's retries on a real ledger, on a clock the test moves by hand."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pacs.archive.commitment import (
    NO_SUCH_OBJECT_INSTANCE,
    CommitmentPolicy,
    CommitmentService,
    ReportNotDelivered,
)
from pacs.audit.auditor import Auditor
from pacs.index.commitments import CommitmentLedger
from pacs.index.engine import AsyncEngine, create_sessionmaker
from pacs.index.repository import Index
from pacs.store.blobstore import FileBlobStore
from pacs.threads import ThreadPools

CT = "1.2.840.10008.5.1.4.1.1.2"
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
POLICY = CommitmentPolicy(verify_hash=False, retry_interval=5, max_retry_interval=20, deadline=60)


class ManualClock:
    """Time that moves only when the test moves it. The worker's waits are handed to the
    test (`waits`), which lets the time they ask for pass at once."""

    def __init__(self, start: datetime) -> None:
        self.moment = start
        self.waits: asyncio.Queue[float | None] = asyncio.Queue()
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self.moment

    async def wait(self, wake: asyncio.Event, seconds: float | None) -> None:
        self._moved.clear()
        self.waits.put_nowait(seconds)
        woken = asyncio.ensure_future(wake.wait())
        moved = asyncio.ensure_future(self._moved.wait())
        try:
            await asyncio.wait({woken, moved}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            moved.cancel()

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)
        self._moved.set()


class Requester:
    """A requester that takes the report only after `refusals` failed deliveries."""

    def __init__(self, clock: ManualClock, refusals: int) -> None:
        self._clock = clock
        self._refusals = refusals
        self.attempts: list[tuple[datetime, dict[str, Any]]] = []

    async def send_report(
        self, requester_ae_title: str, transaction_uid: str, result: dict[str, Any]
    ) -> None:
        self.attempts.append((self._clock.now(), result))
        if len(self.attempts) <= self._refusals:
            raise ReportNotDelivered(f"{requester_ae_title} is not listening")


async def run_until_idle(service: CommitmentService, clock: ManualClock) -> list[float]:
    """Run the worker, letting each wait it asks for pass, until it waits with nothing due;
    the waits, in seconds."""
    waits: list[float] = []
    worker = asyncio.create_task(service.run())
    try:
        while (seconds := await asyncio.wait_for(clock.waits.get(), 30)) is not None:
            waits.append(seconds)
            clock.advance(seconds)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    return waits


def commitment(
    engine: AsyncEngine,
    index: Index,
    requester: Requester,
    clock: ManualClock,
    tmp_path: Path,
    *,
    pools: ThreadPools,
) -> tuple[CommitmentService, CommitmentLedger]:
    ledger = CommitmentLedger(create_sessionmaker(engine))
    store = FileBlobStore(tmp_path / "store", commits=pools.store_commits)
    auditor = Auditor("PACS", [])
    service = CommitmentService(
        ledger, index, store, requester, POLICY, auditor=auditor, clock=clock
    )
    return service, ledger


async def test_retries_back_off_doubling_to_the_cap_until_the_deadline(
    engine: AsyncEngine, index: Index, tmp_path: Path, thread_pools: ThreadPools
) -> None:
    clock = ManualClock(START)
    requester = Requester(clock, refusals=100)
    service, ledger = commitment(engine, index, requester, clock, tmp_path, pools=thread_pools)
    assert await service.accept("1.2.3", "MODALITY", [(CT, "1.2.3.4")])

    waits = await run_until_idle(service, clock)

    # 5, 10, then 20 (the cap); the attempt after 55 s would fall after the 60 s deadline.
    assert waits == [5, 10, 20, 20]
    tried_at = [moment - START for moment, _ in requester.attempts]
    assert tried_at == [timedelta(seconds=s) for s in (0, 5, 15, 35, 55)]
    assert await ledger.state_of("1.2.3") == "undeliverable"


async def test_a_report_delivered_on_a_retry_reports_the_first_verdict(
    engine: AsyncEngine, index: Index, tmp_path: Path, thread_pools: ThreadPools
) -> None:
    clock = ManualClock(START)
    requester = Requester(clock, refusals=2)
    service, ledger = commitment(engine, index, requester, clock, tmp_path, pools=thread_pools)
    assert await service.accept("1.2.3", "MODALITY", [(CT, "1.2.3.4")])

    waits = await run_until_idle(service, clock)

    assert waits == [5, 10]
    assert [moment - START for moment, _ in requester.attempts] == [
        timedelta(seconds=s) for s in (0, 5, 15)
    ]
    verdict = {"committed": [], "failed": [[CT, "1.2.3.4", NO_SUCH_OBJECT_INSTANCE]]}
    assert [result for _, result in requester.attempts] == [verdict] * 3
    assert await ledger.state_of("1.2.3") == "reported"
