"""Storage Commitment transactions in the database: they outlive restarts until reported.

Several processes may share the database (`[server] workers`, several hosts): each
transaction is reported by the one process that holds its claim (`claimed_by` until
`claimed_until`). The process that took the N-ACTION claims it first, so the report can
go on that same association; a claim is renewed while its process lives, and one that
ran out (its process died) is taken by the next process that looks. Claims are taken
with FOR UPDATE SKIP LOCKED on PostgreSQL: two processes never take the same row.
"""

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pacs.index.database_errors import index_errors
from pacs.index.models import CommitmentRequest

PENDING, REPORTED, UNDELIVERABLE = "pending", "reported", "undeliverable"


@dataclass(frozen=True, slots=True)
class Transaction:
    """A commitment request as the worker sees it."""

    transaction_uid: str
    requester_ae_title: str
    references: tuple[tuple[str, str], ...]  # (SOP Class UID, SOP Instance UID)
    result: dict[str, Any] | None
    attempts: int
    next_attempt_at: datetime
    deadline: datetime


def _transaction(row: CommitmentRequest) -> Transaction:
    return Transaction(
        row.transaction_uid,
        row.requester_ae_title,
        tuple((str(c), str(i)) for c, i in row.references),
        row.result,
        row.attempts,
        _aware(row.next_attempt_at),
        _aware(row.deadline),
    )


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def process_name() -> str:
    """This process among those sharing the database: host, pid, and a token per start."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class CommitmentLedger:
    """Pending, reported and undeliverable commitment transactions, and their claims."""

    # Transactions one claim takes at most: the rest wait for the next round.
    CLAIM_LIMIT = 100

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], owner: str | None = None
    ) -> None:
        self._sessionmaker = sessionmaker
        self.owner = owner or process_name()

    async def add(
        self,
        transaction_uid: str,
        requester_ae_title: str,
        references: list[tuple[str, str]],
        now: datetime,
        deadline: datetime,
        *,
        claim_until: datetime | None = None,
    ) -> bool:
        """Record a new transaction, due at once (`now`) and claimed by this process until
        `claim_until`; False when that Transaction UID is already known."""
        row = CommitmentRequest(
            transaction_uid=transaction_uid,
            requester_ae_title=requester_ae_title,
            references=[list(ref) for ref in references],
            result=None,
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
            deadline=deadline,
            created_at=now,
            claimed_by=self.owner if claim_until else None,
            claimed_until=claim_until,
        )
        with index_errors():
            try:
                async with self._sessionmaker.begin() as session:
                    session.add(row)
            except IntegrityError:
                return False
        return True

    def _claimable(self, now: datetime) -> ColumnElement[bool]:
        row = CommitmentRequest
        return (
            (row.state == PENDING)
            & (row.next_attempt_at <= now)
            & or_(row.claimed_by.is_(None), row.claimed_by == self.owner, row.claimed_until <= now)
        )

    async def claim_due(self, now: datetime, until: datetime) -> list[Transaction]:
        """Claim the pending transactions that are due and free (unclaimed, this process's,
        or claimed by a process whose claim ran out) until `until`; return them."""
        row = CommitmentRequest
        free = (
            select(row.id)
            .where(self._claimable(now))
            .order_by(row.next_attempt_at)
            .limit(self.CLAIM_LIMIT)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer
        )
        statement = (
            update(row)
            .where(row.id.in_(free.scalar_subquery()))
            .values(claimed_by=self.owner, claimed_until=until)
            .returning(row)
            .execution_options(synchronize_session=False)
        )
        with index_errors():
            async with self._sessionmaker.begin() as session:
                rows = (await session.scalars(statement)).all()
        return sorted(map(_transaction, rows), key=lambda t: t.next_attempt_at)

    async def next_due(self) -> datetime | None:
        """When a pending transaction is next due for this process (one claimed by another
        process: once that claim runs out), or None when none is pending."""
        row = CommitmentRequest
        statement = select(row.next_attempt_at, row.claimed_by, row.claimed_until).where(
            row.state == PENDING
        )
        with index_errors():
            async with self._sessionmaker() as session:
                rows = (await session.execute(statement)).all()
        moments = []
        for next_attempt, owner, until in rows:
            moment = _aware(next_attempt)
            if owner not in (None, self.owner) and until is not None:
                moment = max(moment, _aware(until))
            moments.append(moment)
        return min(moments, default=None)

    async def _claimed(self, until: datetime | None, transaction_uid: str | None = None) -> int:
        """Set this process's pending claims (or the one of `transaction_uid`) to hold
        until `until` (None: release them); how many it holds."""
        row = CommitmentRequest
        mine = (row.claimed_by == self.owner) & (row.state == PENDING)
        if transaction_uid is not None:
            mine &= row.transaction_uid == transaction_uid
        owner = self.owner if until is not None else None
        statement = update(row).where(mine).values(claimed_by=owner, claimed_until=until)
        with index_errors():
            async with self._sessionmaker.begin() as session:
                result = await session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def renew(self, until: datetime) -> int:
        """Extend every pending claim of this process to `until`; how many there are."""
        return await self._claimed(until)

    async def holds(self, transaction_uid: str, until: datetime) -> bool:
        """Whether this process still holds the claim of a pending transaction (extending it)."""
        return await self._claimed(until, transaction_uid) == 1

    async def release(self) -> None:
        """Give up this process's claims (it stops): other processes take them at once."""
        await self._claimed(None)

    async def _update(self, transaction_uid: str, **values: Any) -> None:
        statement = (
            update(CommitmentRequest)
            .where(CommitmentRequest.transaction_uid == transaction_uid)
            .values(**values)
        )
        with index_errors():
            async with self._sessionmaker.begin() as session:
                await session.execute(statement)

    async def decide(self, transaction_uid: str, result: dict[str, Any]) -> None:
        """Keep the verification's result: every later attempt reports exactly this."""
        await self._update(transaction_uid, result=result)

    async def retry_at(self, transaction_uid: str, attempts: int, moment: datetime) -> None:
        await self._update(transaction_uid, attempts=attempts, next_attempt_at=moment)

    async def reported(self, transaction_uid: str) -> None:
        await self._update(transaction_uid, state=REPORTED, reported_at=datetime.now(UTC))

    async def undeliverable(self, transaction_uid: str) -> None:
        await self._update(transaction_uid, state=UNDELIVERABLE)

    async def state_of(self, transaction_uid: str) -> str | None:
        statement = select(CommitmentRequest.state).where(
            CommitmentRequest.transaction_uid == transaction_uid
        )
        with index_errors():
            async with self._sessionmaker() as session:
                return (await session.execute(statement)).scalar_one_or_none()

    async def count_by_state(self) -> dict[str, int]:
        """How many transactions are in each state (for the metrics)."""
        statement = select(CommitmentRequest.state, func.count()).group_by(CommitmentRequest.state)
        with index_errors():
            async with self._sessionmaker() as session:
                rows = (await session.execute(statement)).all()
        return {str(state): int(count) for state, count in rows}
