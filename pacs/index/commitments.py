"""Storage Commitment transactions in the database: they outlive restarts until reported."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
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


class CommitmentLedger:
    """Pending, reported and undeliverable commitment transactions."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def add(
        self,
        transaction_uid: str,
        requester_ae_title: str,
        references: list[tuple[str, str]],
        now: datetime,
        deadline: datetime,
    ) -> bool:
        """Record a new transaction, due at once (`now`); False when that Transaction UID is
        already known."""
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
        )
        with index_errors():
            try:
                async with self._sessionmaker.begin() as session:
                    session.add(row)
            except IntegrityError:
                return False
        return True

    async def due(self, now: datetime) -> list[Transaction]:
        """Pending transactions whose next attempt is due."""
        statement = (
            select(CommitmentRequest)
            .where(CommitmentRequest.state == PENDING)
            .order_by(CommitmentRequest.next_attempt_at)
        )
        with index_errors():
            async with self._sessionmaker() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [t for t in map(_transaction, rows) if t.next_attempt_at <= now]

    async def next_due(self) -> datetime | None:
        """When the earliest pending transaction is due, or None when none is pending."""
        statement = select(CommitmentRequest.next_attempt_at).where(
            CommitmentRequest.state == PENDING
        )
        with index_errors():
            async with self._sessionmaker() as session:
                moments = (await session.execute(statement)).scalars().all()
        return min(map(_aware, moments), default=None)

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
