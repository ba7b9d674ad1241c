"""Locate the stored instances a retrieve names: their files and encodings, page by page."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select

from pacs.dicom.selection import Selection
from pacs.index.models import Instance, Patient, Series, Study
from pacs.index.reads import Reads


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """One instance to send: what it is, how it is encoded, where its file is."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    blob_sha256: str
    blob_size: int
    # For the audit trail: which study, of which patient, an instance sent belongs to.
    study_instance_uid: str = ""
    patient_id: str = ""


def _conditions(selection: Selection) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if selection.patient_ids:
        conditions.append(Patient.patient_id.in_(selection.patient_ids))
    if selection.study_uids:
        conditions.append(Study.study_instance_uid.in_(selection.study_uids))
    if selection.series_uids:
        conditions.append(Series.series_instance_uid.in_(selection.series_uids))
    if selection.sop_uids:
        conditions.append(Instance.sop_instance_uid.in_(selection.sop_uids))
    return conditions


_Statement = TypeVar("_Statement", bound="Select[*tuple[Any, ...]]")


def _joined(statement: _Statement, selection: Selection) -> _Statement:
    return (
        statement.join(Series, Instance.series_fk == Series.id)
        .join(Study, Series.study_fk == Study.id)
        .join(Patient, Study.patient_fk == Patient.id)
        .where(*_conditions(selection))
    )


class Locator:
    """Finds the instances of a retrieve: read-only, one statement per page through Reads,
    so nothing is held open while the instances go out."""

    def __init__(self, reads: Reads) -> None:
        self._reads = reads

    async def summary(self, selection: Selection) -> tuple[int, set[tuple[str, str]]]:
        """How many instances, and which (SOP Class, transfer syntax) pairs they have."""
        statement = _joined(
            select(Instance.sop_class_uid, Instance.transfer_syntax_uid, func.count(Instance.id))
            .select_from(Instance)
            .group_by(Instance.sop_class_uid, Instance.transfer_syntax_uid),
            selection,
        )
        rows = await self._reads.all(statement)
        return sum(int(row[2]) for row in rows), {(str(row[0]), str(row[1])) for row in rows}

    async def locate(
        self, selection: Selection, page_size: int = 500
    ) -> AsyncIterator[list[StoredInstance]]:
        """Yield the instances in pages (keyset on id), so a huge study costs one page of memory."""
        after = 0
        while True:
            statement = (
                _joined(
                    select(
                        Instance.id,
                        Instance.sop_class_uid,
                        Instance.sop_instance_uid,
                        Instance.transfer_syntax_uid,
                        Instance.blob_sha256,
                        Instance.blob_size,
                        Study.study_instance_uid,
                        Patient.patient_id,
                    ).select_from(Instance),
                    selection,
                )
                .where(Instance.id > after)
                .order_by(Instance.id)
                .limit(page_size)
            )
            rows = await self._reads.all(statement)
            if rows:
                yield [
                    StoredInstance(
                        str(row[1]),
                        str(row[2]),
                        str(row[3]),
                        str(row[4]),
                        int(row[5]),
                        str(row[6]),
                        str(row[7] or ""),
                    )
                    for row in rows
                ]
            if len(rows) < page_size:
                return
            after = int(rows[-1][0])


async def patient_study_uids(reads: Reads, patient_id: str, issuer: str = "") -> tuple[str, ...]:
    """The Study Instance UIDs of the patient `patient_id` issued by `issuer`."""
    statement = (
        select(Study.study_instance_uid)
        .join(Patient, Study.patient_fk == Patient.id)
        .where(Patient.patient_id == patient_id, Patient.issuer_of_patient_id == issuer)
        .order_by(Study.id)
    )
    return tuple(str(row[0]) for row in await reads.all(statement))
