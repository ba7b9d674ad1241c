"""Ingest: a received instance becomes a durable file in the store and rows in the index.

The order is the archive's promise (acknowledged means durable): stream the
fragments to a staging file while hashing, check and parse the header, fsync
and rename the file to its address, commit the index rows, and where the store
asks for it make sure the file is still at its address (`StagedBlob.confirm`:
S3, when the upload found the object there, which `pacs gc` may have been taking
away). Only then does the caller answer Success. Concurrent ingests share index
commits (group commit).
"""

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pacs.archive.group_commit import GroupCommit
from pacs.archive.records import record_for
from pacs.archive.staged import StagedInstance
from pacs.dicom.header_scan import Levels, read_instance
from pacs.dicom.levels import QueryLevel
from pacs.dicom.part10 import file_meta_bytes
from pacs.errors import DataSetMismatch, InstanceConflict, InvalidInstance
from pacs.index.records import (
    AddKind,
    AddOutcome,
    DuplicatePolicy,
    PatientColumns,
    PatientConflict,
)
from pacs.store.blobstore import BlobRef
from pacs.store.protocol import BlobStore, StagedBlob

log = logging.getLogger(__name__)

# Received bytes are handed to a worker thread in batches of about this size:
# file writes and hashing release the GIL, and one hop per batch keeps the loop free.
FLUSH_BYTES = 1024 * 1024
# A data set smaller than this is written and its header read on the event loop: a hop
# to a worker thread and back costs more, in GIL hand-offs, than the work itself.
ON_LOOP_BYTES = 256 * 1024
STUDY_INSTANCE_UID = "0020000D"

# A piece of a received data set: the network layer hands on views of the bytes it read.
Fragment = bytes | memoryview


@dataclass(frozen=True, slots=True)
class Arrival:
    """What the network says about an instance as it arrives (the C-STORE-RQ and its context)."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    source_ae_title: str
    # The study the instance must belong to (STOW-RS to /studies/{uid}); None: any.
    study_instance_uid: str | None = None


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What storing one instance did: the index's verdict and the file's address."""

    kind: AddKind
    blob: BlobRef
    previous_sha256: str | None = None
    # For the audit trail.
    study_instance_uid: str = ""
    patient_id: str = ""

    @property
    def added_bytes(self) -> int:
        """The file's size when this store made it the instance's current file, else 0
        (the same content was there already, or the duplicate policy kept the first)."""
        return self.blob.size if self.kind in (AddKind.STORED, AddKind.REPLACED) else 0


@dataclass(slots=True)
class IngestCounters:
    """What ingest has seen since start that an admin should watch."""

    patient_conflicts: int = 0


# The patient attributes a conflict compares; names and the rest are PHI kept out of
# INFO and WARNING lines (the log at level INFO is the ordinary log).
_DEMOGRAPHICS = {
    "PatientName": "patient_name",
    "PatientBirthDate": "patient_birth_date",
    "PatientSex": "patient_sex",
}


def _identify(patient: PatientColumns) -> str:
    return f"PatientID={patient.patient_id!r} IssuerOfPatientID={patient.issuer_of_patient_id!r}"


def _describe(patient: PatientColumns) -> str:
    values = " ".join(f"{k}={getattr(patient, a)!r}" for k, a in _DEMOGRAPHICS.items())
    return f"{_identify(patient)} {values}"


def _differing(conflict: PatientConflict) -> str:
    received, kept = conflict.received, conflict.kept
    names = [k for k, a in _DEMOGRAPHICS.items() if getattr(received, a) != getattr(kept, a)]
    return ", ".join(names) or "none of name, birth date, sex"


def _check_study(levels: Levels, arrival: Arrival) -> None:
    """DataSetMismatch when the instance is not of the study its arrival requires."""
    if arrival.study_instance_uid is None:
        return
    element = levels[QueryLevel.STUDY].get(STUDY_INSTANCE_UID) or {}
    found = (element.get("Value") or [""])[0]
    if found != arrival.study_instance_uid:
        raise DataSetMismatch(
            f"SOP Instance {arrival.sop_instance_uid} is of study {found!r}, "
            f"not {arrival.study_instance_uid}"
        )


def _write_all(writer: StagedBlob, chunks: list[Fragment]) -> None:
    for chunk in chunks:
        writer.write(chunk)


class _Staging:
    """The file being received. Blocking methods, run in worker threads, or on the loop for
    a data set under ON_LOOP_BYTES that arrives whole: the first call opens the file
    (free-space check, File Meta Information), so a larger instance costs one hop a batch."""

    def __init__(self, store: BlobStore, arrival: Arrival) -> None:
        self._store = store
        self._arrival = arrival
        self._writer: StagedBlob | None = None
        self._offset = 0

    def write(self, chunks: list[Fragment]) -> StagedBlob:
        writer = self._begin(None) if self._writer is None else self._writer
        _write_all(writer, chunks)
        return writer

    def _begin(self, data_set_bytes: int | None) -> StagedBlob:
        """Open the blob and write its File Meta Information; `data_set_bytes` when the
        whole data set is at hand, so the store may keep a small one in memory."""
        arrival = self._arrival
        meta = file_meta_bytes(
            arrival.sop_class_uid,
            arrival.sop_instance_uid,
            arrival.transfer_syntax_uid,
            arrival.source_ae_title,
        )
        size = None if data_set_bytes is None else len(meta) + data_set_bytes
        self._writer = writer = self._store.begin(size)
        self._offset = len(meta)
        writer.write(meta)
        return writer

    def finish(self, chunks: list[Fragment]) -> StagedInstance:
        """Last bytes, header checks, then the commit of the file, left running.

        The file is synced, renamed to its address and its directory synced while the
        caller writes its index rows: the index commits once that is done. A data set
        that arrives whole in the last batch (every instance below FLUSH_BYTES) is parsed
        from memory, before its commit starts, and the store is told its size up front
        (S3 then keeps it in memory rather than in a staging file). A larger one is read
        back from its staging file while that syncs.
        """
        whole = self._writer is None
        if whole:
            self._begin(sum(len(chunk) for chunk in chunks))
        writer = self.write(chunks)
        if not whole:
            writer.start_sync()
        arrival = self._arrival
        announced = (arrival.transfer_syntax_uid, arrival.sop_class_uid, arrival.sop_instance_uid)
        if whole:
            levels, layout = read_instance(b"".join(chunks), *announced, self._offset)
        else:
            with writer.open_staged() as fp:
                fp.seek(self._offset)
                levels, layout = read_instance(fp, *announced, 0)
        _check_study(levels, arrival)
        stored = writer.commit_in_background()
        record = record_for(
            levels, arrival.transfer_syntax_uid, writer.reference, arrival.source_ae_title, layout
        )
        return StagedInstance(record, stored)

    async def confirmed(self) -> None:
        """Once the index committed: wait until the store made sure the file is still at its
        address; at once (no hop) when it has nothing to check."""
        confirming = None if self._writer is None else self._writer.confirm()
        if confirming is not None:
            await asyncio.wrap_future(confirming)

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.discard()


class Ingest:
    """Stores received instances; one per association at a time, many associations at once."""

    def __init__(self, store: BlobStore, commits: GroupCommit) -> None:
        self._store = store
        self._commits = commits
        self.counters = IngestCounters()

    async def ingest(self, arrival: Arrival, fragments: AsyncIterator[Fragment]) -> IngestOutcome:
        """Store one instance; return only when it is durable. Raises PacsError subclasses."""
        staging = _Staging(self._store, arrival)
        # The staging file belongs to the thread working on it until that returns, even
        # when this task is cancelled (shield), so a discard never runs beside it.
        working: asyncio.Task[Any] | None = None
        try:
            chunks: list[Fragment] = []
            buffered = 0
            async for fragment in fragments:
                chunks.append(fragment)
                buffered += len(fragment)
                if buffered >= FLUSH_BYTES:
                    working = asyncio.create_task(asyncio.to_thread(staging.write, chunks))
                    await asyncio.shield(working)
                    chunks, buffered = [], 0
            if working is None and buffered < ON_LOOP_BYTES:
                staged = staging.finish(chunks)
            else:
                working = asyncio.create_task(asyncio.to_thread(staging.finish, chunks))
                staged = await asyncio.shield(working)
        except BaseException:
            if working is not None:
                await asyncio.wait({working})
                if not working.cancelled():
                    working.exception()  # retrieved: what is raised here is the first error
            await asyncio.to_thread(staging.discard)
            raise
        return await self._index(staging, staged, arrival)

    async def _index(
        self, staging: _Staging, staged: StagedInstance, arrival: Arrival
    ) -> IngestOutcome:
        """Commit the instance's rows; return once the store confirmed its file."""
        try:
            outcome = await self._commits.add(staged)
            # The index committed, so the file is stored: blob() returns at once.
            judged = self._judge(outcome, staged.blob(), arrival)
            await staging.confirmed()
        except BaseException:
            await asyncio.to_thread(staging.discard)  # a file kept for the confirmation
            raise
        return dataclasses.replace(
            judged,
            study_instance_uid=staged.record.study.study_instance_uid,
            patient_id=staged.record.patient.patient_id,
        )

    def _judge(self, outcome: AddOutcome, blob: BlobRef, arrival: Arrival) -> IngestOutcome:
        uid = outcome.sop_instance_uid
        if outcome.conflict is not None:
            self._report(outcome.conflict, arrival)
        if outcome.kind == AddKind.REJECTED:
            raise InstanceConflict(
                f"SOP Instance {uid} is already stored with other content "
                f"({outcome.previous_sha256}); the duplicate policy rejects it"
            )
        if outcome.kind == AddKind.FAILED:
            raise InvalidInstance(f"SOP Instance {uid} could not be indexed: {outcome.reason}")
        if outcome.kind in (AddKind.KEPT_EXISTING, AddKind.REPLACED):
            log.warning(
                "SOP Instance %s re-sent with other content: stored %s, received %s; %s",
                uid,
                outcome.previous_sha256,
                blob.sha256,
                "kept the first" if outcome.kind == AddKind.KEPT_EXISTING else "replaced it",
            )
        return IngestOutcome(outcome.kind, blob, outcome.previous_sha256)

    def _report(self, conflict: PatientConflict, arrival: Arrival) -> None:
        """Count and log an instance filed under a patient whose attributes it contradicts."""
        self.counters.patient_conflicts += 1
        # WARNING, with the IDs an admin needs to find both records; the differing
        # values themselves (names, birth dates) only at DEBUG.
        log.warning(
            "patient attributes differ: SOP Instance %s of study %s from %s has %s; "
            "its patient keeps %s (the first stored wins); differing: %s (values at DEBUG)",
            arrival.sop_instance_uid,
            conflict.study_instance_uid,
            arrival.source_ae_title,
            _identify(conflict.received),
            _identify(conflict.kept),
            _differing(conflict),
        )
        log.debug(
            "patient attributes of SOP Instance %s: received %s; kept %s",
            arrival.sop_instance_uid,
            _describe(conflict.received),
            _describe(conflict.kept),
        )


__all__ = ["Arrival", "DuplicatePolicy", "Ingest", "IngestCounters", "IngestOutcome"]
