"""Storage Commitment (PS3.4 J): verify what a modality asks us to keep, report it, durably.

`accept` only records the transaction, so the N-ACTION is answered at once.
A worker verifies each referenced instance against the index and the store,
keeps the result in the database, and sends the report through a
ReportSender; an undelivered report is retried with backoff until its deadline.

Processes sharing the database coordinate through it: a transaction is reported by the
process that holds its claim (index/commitments.py), which is the one that took the
N-ACTION unless it died; claims are renewed every third of the lease while the worker
runs and released when it stops.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pacs.audit.auditor import Auditor, StudyTally
from pacs.audit.events import Node
from pacs.errors import PacsError
from pacs.index.commitments import CommitmentLedger, Transaction
from pacs.index.records import InstanceRow

log = logging.getLogger(__name__)

# Failure Reason values of PS3.4 J.3.2.1.2 (report content, not DIMSE statuses).
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119


class ReportNotDelivered(PacsError):
    """The N-EVENT-REPORT could not be delivered this time (the message says why)."""


class ReportSender(Protocol):
    async def send_report(
        self, requester_ae_title: str, transaction_uid: str, result: dict[str, Any]
    ) -> None: ...


class InstanceLookup(Protocol):
    async def get_instance(self, sop_instance_uid: str) -> InstanceRow | None: ...


class BlobCheck(Protocol):
    def exists(self, sha256: str) -> bool: ...

    def verify(self, sha256: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class CommitmentPolicy:
    """How thoroughly to verify and how long to keep trying to report."""

    verify_hash: bool = True  # re-hash every file; False: check it exists
    retry_interval: float = 5.0
    max_retry_interval: float = 300.0
    deadline: float = 86400.0
    # How long a claim holds without renewal: how late a report of a process that
    # died comes from another one.
    lease: float = 30.0
    # Look for transactions of other processes at least this often (None: only when due
    # or woken, for a process alone on its database).
    poll_interval: float | None = None


class Clock(Protocol):
    """The worker's time: what time it is, and waiting until woken or a while has passed."""

    def now(self) -> datetime: ...

    async def wait(self, wake: asyncio.Event, seconds: float | None) -> None: ...


class SystemClock:
    """Wall-clock time and real waiting."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait(self, wake: asyncio.Event, seconds: float | None) -> None:
        """Return once `wake` is set or `seconds` have passed (None: only once woken)."""
        try:
            async with asyncio.timeout(seconds):
                await wake.wait()
        except TimeoutError:
            pass


class CommitmentService:
    """Accepts commitment requests and runs the worker that resolves and reports them."""

    def __init__(
        self,
        ledger: CommitmentLedger,
        index: InstanceLookup,
        store: BlobCheck,
        sender: ReportSender,
        policy: CommitmentPolicy,
        *,
        auditor: Auditor,
        clock: Clock | None = None,
    ) -> None:
        self._auditor = auditor
        self._clock = clock or SystemClock()
        self._ledger = ledger
        self._index = index
        self._store = store
        self._sender = sender
        self._policy = policy
        self._wake = asyncio.Event()

    async def accept(
        self, transaction_uid: str, requester_ae_title: str, references: list[tuple[str, str]]
    ) -> bool:
        """Record a request and wake the worker; False when the Transaction UID is known."""
        now = self._clock.now()
        deadline = now + timedelta(seconds=self._policy.deadline)
        added = await self._ledger.add(
            transaction_uid,
            requester_ae_title,
            references,
            now,
            deadline,
            claim_until=self._until(),
        )
        self._wake.set()
        return added

    def _until(self) -> datetime:
        return self._clock.now() + timedelta(seconds=self._policy.lease)

    async def run(self) -> None:
        """The worker: resolve and report due transactions until cancelled."""
        keeper = asyncio.create_task(self._keep_claims(), name="commitment claims")
        try:
            await self._work()
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _work(self) -> None:
        clock = self._clock
        while True:
            try:
                for transaction in await self._ledger.claim_due(clock.now(), self._until()):
                    await self._process(transaction)
                next_due = await self._ledger.next_due()
            except PacsError as exc:
                log.warning("commitment worker: %s; trying again shortly", exc)
                next_due = clock.now() + timedelta(seconds=self._policy.retry_interval)
            wait = None if next_due is None else (next_due - clock.now()).total_seconds()
            if (poll := self._policy.poll_interval) is not None:
                wait = poll if wait is None else min(wait, poll)
            self._wake.clear()
            if wait is None or wait > 0:
                await clock.wait(self._wake, wait)

    async def _keep_claims(self) -> None:
        """Renew this process's claims while it runs, well before they run out."""
        while True:
            await asyncio.sleep(self._policy.lease / 3)
            try:
                await self._ledger.renew(self._until())
            except PacsError as exc:
                log.warning("commitment worker: claims not renewed: %s", exc)

    async def release(self) -> None:
        """Give up this process's claims once its worker stopped (others take them over)."""
        try:
            await self._ledger.release()
        except PacsError as exc:
            log.warning("commitment claims not released (they run out by themselves): %s", exc)

    async def _process(self, transaction: Transaction) -> None:
        uid = transaction.transaction_uid
        result = transaction.result
        if result is None:
            result, studies = await self._verify(transaction.references)
            await self._ledger.decide(uid, result)
            self._auditor.instances_accessed(
                Node(transaction.requester_ae_title),
                [tally.study(study_uid) for study_uid, tally in studies.items()],
                failed=len(result["failed"]),
                description=f"storage commitment {uid}: {len(result['failed'])} failed",
            )
        if not await self._ledger.holds(uid, self._until()):
            # This process stalled past its lease and another one took the transaction.
            log.warning("commitment %s: claimed by another process meanwhile; not reported", uid)
            return
        try:
            await self._sender.send_report(transaction.requester_ae_title, uid, result)
        except ReportNotDelivered as exc:
            await self._retry_later(transaction, exc)
            return
        await self._ledger.reported(uid)
        log.info(
            "commitment %s for %s reported: %d committed, %d failed",
            uid,
            transaction.requester_ae_title,
            len(result["committed"]),
            len(result["failed"]),
        )

    async def _retry_later(self, transaction: Transaction, reason: Exception) -> None:
        attempts = transaction.attempts + 1
        delay = min(
            self._policy.retry_interval * 2 ** (attempts - 1), self._policy.max_retry_interval
        )
        moment = self._clock.now() + timedelta(seconds=delay)
        if moment > transaction.deadline:
            await self._ledger.undeliverable(transaction.transaction_uid)
            log.error(
                "commitment %s for %s undeliverable after %d attempts: %s",
                transaction.transaction_uid,
                transaction.requester_ae_title,
                attempts,
                reason,
            )
            return
        await self._ledger.retry_at(transaction.transaction_uid, attempts, moment)
        log.warning(
            "commitment %s: report not delivered (%s); retry in %.0f s",
            transaction.transaction_uid,
            reason,
            delay,
        )

    async def _verify(
        self, references: tuple[tuple[str, str], ...]
    ) -> tuple[dict[str, Any], dict[str, StudyTally]]:
        """The report's content, and the committed instances by study for the audit trail."""
        committed: list[list[str]] = []
        failed: list[list[Any]] = []
        studies: dict[str, StudyTally] = {}
        for sop_class, sop_instance in references:
            reason, row = await self._check(sop_class, sop_instance)
            if row is not None:
                committed.append([sop_class, sop_instance])
                tally = StudyTally(row.patient_id or "")
                studies.setdefault(row.study_instance_uid, tally).add(sop_class)
            else:
                failed.append([sop_class, sop_instance, reason])
        return {"committed": committed, "failed": failed}, studies

    async def _check(
        self, sop_class: str, sop_instance: str
    ) -> tuple[int, None] | tuple[None, InstanceRow]:
        """(None, its row) when committed, else (the Failure Reason, None)."""
        try:
            row = await self._index.get_instance(sop_instance)
        except PacsError:
            return PROCESSING_FAILURE, None
        if row is None:
            return NO_SUCH_OBJECT_INSTANCE, None
        if row.sop_class_uid != sop_class:
            return CLASS_INSTANCE_CONFLICT, None
        check = self._store.verify if self._policy.verify_hash else self._store.exists
        if not await asyncio.to_thread(check, row.blob_sha256):
            log.error("commitment: file of %s is missing or altered", sop_instance)
            return PROCESSING_FAILURE, None
        return None, row
