"""The de-identification mappings in the index: each profile's replaced UIDs and patients.

Replacements are keyed hashes, so concurrent transfers under one profile agree on them:
rows already present are left as they are (INSERT ... ON CONFLICT DO NOTHING).
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from pacs.index.database_errors import index_errors
from pacs.index.models import DeidentifiedPatient, DeidentifiedUid

_INSERTS = {
    name: (
        insert(DeidentifiedUid).on_conflict_do_nothing(),
        insert(DeidentifiedPatient).on_conflict_do_nothing(),
    )
    for name, insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))
}
_BATCH = 1000  # rows per statement


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start : start + _BATCH]


def write_mappings(
    scope: str,
    uids: Mapping[str, str],
    patients: Mapping[tuple[str, str], tuple[str, int]],
) -> Callable[[Connection], None]:
    """The write of one transfer's mappings: (issuer, patient ID) -> (pseudonym, shift days)."""
    uid_rows = [
        {"scope": scope, "original_uid": old, "replacement_uid": new} for old, new in uids.items()
    ]
    patient_rows = [
        {
            "scope": scope,
            "issuer_of_patient_id": issuer,
            "patient_id": patient_id,
            "pseudonym": pseudonym,
            "shift_days": shift,
        }
        for (issuer, patient_id), (pseudonym, shift) in patients.items()
    ]

    def work(conn: Connection) -> None:
        insert_uids, insert_patients = _INSERTS[conn.dialect.name]
        for chunk in _chunks(uid_rows):
            conn.execute(insert_uids, chunk)
        for chunk in _chunks(patient_rows):
            conn.execute(insert_patients, chunk)

    return work


async def replacement_uids(engine: AsyncEngine, scope: str) -> dict[str, str]:
    """Every UID the profile `scope` replaced, original -> replacement."""
    statement = select(DeidentifiedUid.original_uid, DeidentifiedUid.replacement_uid).where(
        DeidentifiedUid.scope == scope
    )
    with index_errors():
        async with engine.connect() as conn:
            return {old: new for old, new in (await conn.execute(statement)).all()}


async def pseudonyms(engine: AsyncEngine, scope: str) -> dict[tuple[str, str], tuple[str, int]]:
    """Every patient the profile `scope` replaced: (issuer, ID) -> (pseudonym, shift days)."""
    p = DeidentifiedPatient
    statement = select(p.issuer_of_patient_id, p.patient_id, p.pseudonym, p.shift_days).where(
        p.scope == scope
    )
    with index_errors():
        async with engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
    return {(issuer, pid): (name, shift) for issuer, pid, name, shift in rows}
