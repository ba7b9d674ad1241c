"""Commitment claims between processes sharing one database: each transaction has one owner."""

import asyncio
from datetime import UTC, datetime, timedelta

from pacs.index.commitments import CommitmentLedger
from pacs.index.engine import AsyncEngine, create_engine, create_sessionmaker
from pacs.index.repository import Index
from tests.conftest import ONLY_POSTGRESQL

CT = "1.2.840.10008.5.1.4.1.1.2"
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
DEADLINE = NOW + timedelta(days=1)


def ledger(engine: AsyncEngine, owner: str) -> CommitmentLedger:
    return CommitmentLedger(create_sessionmaker(engine), owner)


async def test_the_accepting_process_claims_first_and_others_wait_for_its_lease(
    engine: AsyncEngine, index: Index
) -> None:
    a, b = ledger(engine, "host-a:1"), ledger(engine, "host-b:2")
    assert await a.add("1.2.1", "MOD", [(CT, "1.2.3")], NOW, DEADLINE, claim_until=NOW + LEASE)

    assert await b.claim_due(NOW, NOW + LEASE) == []
    assert await b.next_due() == NOW + LEASE  # b looks again once a's claim runs out
    assert [t.transaction_uid for t in await a.claim_due(NOW, NOW + LEASE)] == ["1.2.1"]
    # a died: its claim runs out and b takes the transaction over.
    later = NOW + LEASE + timedelta(seconds=1)
    assert [t.transaction_uid for t in await b.claim_due(later, later + LEASE)] == ["1.2.1"]
    assert not await a.holds("1.2.1", later + LEASE)
    assert await b.holds("1.2.1", later + LEASE)


async def test_released_claims_are_taken_at_once_and_reported_ones_never(
    engine: AsyncEngine, index: Index
) -> None:
    a, b = ledger(engine, "host-a:1"), ledger(engine, "host-b:2")
    for uid in ("1.2.1", "1.2.2"):
        await a.add(uid, "MOD", [(CT, "1.2.3")], NOW, DEADLINE, claim_until=NOW + LEASE)
    await a.reported("1.2.2")

    await a.release()

    assert [t.transaction_uid for t in await b.claim_due(NOW, NOW + LEASE)] == ["1.2.1"]
    assert await a.claim_due(NOW, NOW + LEASE) == []
    assert await b.renew(NOW + 2 * LEASE) == 1


@ONLY_POSTGRESQL
async def test_two_processes_claiming_at_once_never_take_the_same_transaction(
    database_url: str, index: Index
) -> None:
    engines = [create_engine(database_url) for _ in range(2)]
    try:
        owners = [ledger(engine, f"host-{n}:1") for n, engine in enumerate(engines)]
        uids = [f"1.2.{n}" for n in range(200)]
        for uid in uids:
            await owners[0].add(uid, "MOD", [(CT, "1.2.3")], NOW, DEADLINE)

        async def claim_all(owner: CommitmentLedger) -> list[str]:
            taken: list[str] = []
            while batch := await owner.claim_due(NOW, NOW + LEASE):
                taken += [t.transaction_uid for t in batch]
                # Claims of its own stay claimable by it: report them to stop seeing them.
                await asyncio.gather(*(owner.reported(t.transaction_uid) for t in batch))
            return taken

        first, second = await asyncio.gather(*(claim_all(owner) for owner in owners))
    finally:
        for engine in engines:
            await engine.dispose()

    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(uids)
