"""De-identification mappings in the index, on SQLite and PostgreSQL: batches, conflicts."""

import asyncio

from pacs.index.deidentified import pseudonyms, replacement_uids
from pacs.index.engine import AsyncEngine
from pacs.index.repository import Index


async def test_mappings_are_kept_per_profile_and_written_again_harmlessly(
    index: Index, engine: AsyncEngine
) -> None:
    uids = {f"1.2.3.{n}": f"2.25.{n}" for n in range(2500)}  # more than one statement's rows
    patients = {("", "P1"): ("ANON01", -10), ("HOSP", "P1"): ("ANON02", -20)}

    await index.record_deidentified("research", uids, patients)
    await index.record_deidentified("research", {"1.2.3.1": "2.25.1", "9.9": "2.25.9"}, {})
    await index.record_deidentified("teaching", {"1.2.3.1": "2.25.77"}, {})

    research = await replacement_uids(engine, "research")
    assert research == {**uids, "9.9": "2.25.9"}
    assert await replacement_uids(engine, "teaching") == {"1.2.3.1": "2.25.77"}
    assert await pseudonyms(engine, "research") == patients
    assert await pseudonyms(engine, "teaching") == {}


async def test_concurrent_transfers_writing_the_same_rows_all_succeed(
    index: Index, engine: AsyncEngine
) -> None:
    uids = {f"1.2.4.{n}": f"2.25.4{n}" for n in range(200)}
    patients = {("", "P2"): ("ANON03", -3)}

    await asyncio.gather(*(index.record_deidentified("research", uids, patients) for _ in range(4)))

    assert await replacement_uids(engine, "research") == uids
    assert await pseudonyms(engine, "research") == patients
