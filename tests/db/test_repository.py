"""Index.add_instances and friends against real SQLite and PostgreSQL databases."""

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import pytest

from pacs.errors import StoreUnavailable
from pacs.index.engine import AsyncEngine, PoolLimits, create_engine, create_sessionmaker
from pacs.index.records import (
    AddKind,
    AddOutcome,
    DuplicatePolicy,
    InstanceRecord,
    PatientColumns,
    SeriesColumns,
    StudyColumns,
)
from pacs.index.repository import Index
from pacs.index.schema import upgrade_to_head
from pacs.store.blobstore import BlobRef
from pacs.threads import ThreadPools

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
STUDY = "1.2.826.0.1.3680043.9.1"
SERIES = "1.2.826.0.1.3680043.9.1.1"


@pytest.fixture(params=["open", "sessionmaker"])
async def index(
    request: pytest.FixtureRequest, engine: AsyncEngine, thread_pools: ThreadPools
) -> AsyncIterator[Index]:
    """The Index as the app opens it (SQLite: writer thread), and on a sessionmaker alone."""
    await upgrade_to_head(engine)
    if request.param == "sessionmaker":
        yield Index(create_sessionmaker(engine))
        return
    index = Index.open(engine, thread_pools.index_writer)
    try:
        yield index
    finally:
        await index.close()


def blob(content: str) -> BlobRef:
    return BlobRef(hashlib.sha256(content.encode()).hexdigest(), len(content))


def record(
    sop_uid: str,
    *,
    content: str | None = None,
    patient_id: str = "P1",
    issuer: str = "",
    study_uid: str = STUDY,
    series_uid: str = SERIES,
    modality: str = "CT",
    sop_class: str = CT_IMAGE,
) -> InstanceRecord:
    return InstanceRecord(
        patient=PatientColumns(patient_id, issuer, patient_name="Doe^Jane", patient_sex=""),
        study=StudyColumns(study_uid, study_date="20240102", accession_number=""),
        series=SeriesColumns(series_uid, modality=modality, series_number=1),
        sop_instance_uid=sop_uid,
        sop_class_uid=sop_class,
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        blob=blob(content or sop_uid),
        instance_number=int(sop_uid.rsplit(".", 1)[-1]),
        source_ae_title="MODALITY",
        patient_attrs={"00100020": {"vr": "LO", "Value": [patient_id]}},
        instance_attrs={"00080018": {"vr": "UI", "Value": [sop_uid]}},
    )


async def rows(engine: AsyncEngine, sql: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(row) for row in await conn.exec_driver_sql(sql)]


def kinds(outcomes: list[AddOutcome]) -> list[AddKind]:
    return [outcome.kind for outcome in outcomes]


async def test_batch_builds_one_hierarchy_and_maintains_aggregates(
    index: Index, engine: AsyncEngine
) -> None:
    batch = [
        record("1.1.1"),
        record("1.1.2"),
        record("1.1.3", series_uid=SERIES + ".2", modality="SR", sop_class=BASIC_TEXT_SR),
    ]

    outcomes = await index.add_instances(batch, DuplicatePolicy.KEEP)

    assert kinds(outcomes) == [AddKind.STORED] * 3
    assert await rows(
        engine, "SELECT patient_id, patient_name_folded, patient_sex FROM patient"
    ) == [("P1", "DOE^JANE", None)]
    assert await rows(
        engine,
        "SELECT number_of_series, number_of_instances, modalities_in_study,"
        " sop_classes_in_study, accession_number FROM study",
    ) == [(2, 3, "CT\\SR", f"{CT_IMAGE}\\{BASIC_TEXT_SR}", None)]
    assert await rows(
        engine, "SELECT modality, number_of_instances FROM series ORDER BY modality"
    ) == [("CT", 2), ("SR", 1)]
    assert await index.count_instances() == 3


async def test_outcomes_follow_input_order(index: Index) -> None:
    batch = [record("1.1.9", patient_id="Z"), record("1.1.1", patient_id="A", study_uid="9.9")]
    await index.add_instances([batch[1]], "keep")

    outcomes = await index.add_instances(batch, "keep")

    assert [(o.sop_instance_uid, o.kind) for o in outcomes] == [
        ("1.1.9", AddKind.STORED),
        ("1.1.1", AddKind.IDENTICAL),
    ]


async def test_same_patient_id_with_another_issuer_is_another_patient(
    index: Index, engine: AsyncEngine
) -> None:
    await index.add_instances(
        [
            record("1.1.1", issuer="HOSP_A"),
            record("1.1.2", issuer="HOSP_B", study_uid="9.9", series_uid="9.9.1"),
        ],
        "keep",
    )

    assert await rows(
        engine, "SELECT patient_id, issuer_of_patient_id FROM patient ORDER BY 2"
    ) == [("P1", "HOSP_A"), ("P1", "HOSP_B")]


async def test_study_known_under_another_patient_takes_the_instance(
    index: Index, engine: AsyncEngine
) -> None:
    await index.add_instances([record("1.1.1", patient_id="P1")], "keep")

    outcomes = await index.add_instances(
        [record("1.1.2", patient_id="P2", series_uid=SERIES + ".2")], "keep"
    )

    assert kinds(outcomes) == [AddKind.STORED]
    assert await rows(engine, "SELECT number_of_series, number_of_instances FROM study") == [(2, 2)]


@pytest.mark.parametrize(
    ("policy", "kind", "current"),
    [
        (DuplicatePolicy.KEEP, AddKind.KEPT_EXISTING, "first"),
        (DuplicatePolicy.REPLACE, AddKind.REPLACED, "second"),
        (DuplicatePolicy.REJECT, AddKind.REJECTED, "first"),
    ],
)
async def test_a_resent_uid_with_other_bytes_follows_the_policy(
    index: Index, engine: AsyncEngine, policy: DuplicatePolicy, kind: AddKind, current: str
) -> None:
    await index.add_instances([record("1.1.1", content="first")], policy)

    outcomes = await index.add_instances([record("1.1.1", content="second")], policy)

    assert outcomes == [AddOutcome(kind, "1.1.1", blob("first").sha256)]
    row = await index.get_instance("1.1.1")
    assert row is not None
    assert (row.blob_sha256, row.blob_size) == (blob(current).sha256, len(current))
    assert await index.referenced_blobs() == {blob(current).sha256}
    assert await rows(engine, "SELECT number_of_instances FROM study") == [(1,)]


@pytest.mark.parametrize("policy", list(DuplicatePolicy))
async def test_identical_resend_changes_nothing_whatever_the_policy(
    index: Index, engine: AsyncEngine, policy: DuplicatePolicy
) -> None:
    await index.add_instances([record("1.1.1")], policy)

    outcomes = await index.add_instances([record("1.1.1")], policy)

    assert outcomes == [AddOutcome(AddKind.IDENTICAL, "1.1.1", blob("1.1.1").sha256)]
    assert await rows(engine, "SELECT number_of_instances FROM series") == [(1,)]


async def test_duplicate_inside_one_batch_meets_the_policy(index: Index) -> None:
    batch = [record("1.1.1", content="first"), record("1.1.1", content="second")]

    outcomes = await index.add_instances(batch, DuplicatePolicy.REJECT)

    assert kinds(outcomes) == [AddKind.STORED, AddKind.REJECTED]
    assert await index.count_instances() == 1


async def test_record_the_database_refuses_fails_alone(index: Index, engine: AsyncEngine) -> None:
    broken = replace(
        record("1.1.2", study_uid="9.9", series_uid="9.9.1"),
        sop_class_uid=None,  # type: ignore[arg-type]  # what the NOT NULL constraint refuses
    )

    outcomes = await index.add_instances([record("1.1.1"), broken, record("1.1.3")], "keep")

    assert kinds(outcomes) == [AddKind.STORED, AddKind.FAILED, AddKind.STORED]
    assert outcomes[1].reason
    assert await rows(engine, "SELECT study_instance_uid FROM study") == [(STUDY,)]
    assert await index.count_instances() == 2


async def test_text_postgresql_cannot_hold_fails_only_its_record(
    index: Index, database_url: str
) -> None:
    nul = replace(
        record("1.1.2", patient_id="P2", study_uid="9.9", series_uid="9.9.1"),
        patient=PatientColumns("P2", patient_name="Doe^Jane\x00"),
    )

    outcomes = await index.add_instances([record("1.1.1"), nul], "keep")

    # SQLite stores NUL characters; PostgreSQL text cannot.
    postgres = database_url.startswith("postgresql")
    assert kinds(outcomes) == [AddKind.STORED, AddKind.FAILED if postgres else AddKind.STORED]


async def test_concurrent_batches_share_one_patient_study_and_series(
    index: Index, engine: AsyncEngine
) -> None:
    batches = [[record(f"1.1.{n}", modality="CT")] for n in range(1, 9)]

    results = await asyncio.gather(*(index.add_instances(b, "keep") for b in batches))

    assert [kinds(r) for r in results] == [[AddKind.STORED]] * 8
    for table in ("patient", "study", "series"):
        assert await rows(engine, f"SELECT count(*) FROM {table}") == [(1,)]
    assert await rows(
        engine, "SELECT number_of_series, number_of_instances, modalities_in_study FROM study"
    ) == [(1, 8, "CT")]
    assert await rows(engine, "SELECT number_of_instances FROM series") == [(8,)]
    assert await index.count_instances() == 8


async def test_concurrent_batches_merge_every_modality_into_the_study(
    index: Index, engine: AsyncEngine
) -> None:
    modalities = ["CT", "MR", "PT", "SR", "CT", "MR", "PT", "SR"]
    batches = [
        [record(f"1.1.{n}", series_uid=f"{SERIES}.{n}", modality=modality)]
        for n, modality in enumerate(modalities, start=1)
    ]

    await asyncio.gather(*(index.add_instances(b, "keep") for b in batches))

    assert await rows(
        engine, "SELECT number_of_series, number_of_instances, modalities_in_study FROM study"
    ) == [(8, 8, "CT\\MR\\PT\\SR")]


async def test_concurrent_overlapping_batches_store_each_uid_once(
    index: Index, engine: AsyncEngine
) -> None:
    # Every batch spans the same new patients, studies and series, in its own input order.
    uids = [
        (f"9.{study}", f"9.{study}.{series}", f"9.{study}.{series}.{n}")
        for study in (1, 2, 3)
        for series in (1, 2)
        for n in (1, 2)
    ]

    def batch(shift: int) -> list[InstanceRecord]:
        chosen = uids[shift:] + uids[:shift]
        return [
            record(sop, patient_id=f"P{study[-1]}", study_uid=study, series_uid=series)
            for study, series, sop in chosen
        ]

    results = await asyncio.gather(*(index.add_instances(batch(n), "keep") for n in range(6)))

    stored = [o.sop_instance_uid for r in results for o in r if o.kind is AddKind.STORED]
    assert sorted(stored) == sorted(sop for _, _, sop in uids)
    assert {o.kind for r in results for o in r} <= {AddKind.STORED, AddKind.IDENTICAL}
    assert await rows(engine, "SELECT count(*) FROM patient") == [(3,)]
    assert (
        await rows(engine, "SELECT number_of_series, number_of_instances FROM study")
        == [(2, 4)] * 3
    )
    assert await rows(engine, "SELECT number_of_instances FROM series") == [(2,)] * 6


async def test_replacing_twice_in_one_batch_keeps_the_last(
    index: Index, engine: AsyncEngine
) -> None:
    await index.add_instances([record("1.1.1", content="first")], "replace")
    batch = [
        record("1.1.1", content="second"),
        record("1.1.2"),
        record("1.1.1", content="first"),
    ]

    outcomes = await index.add_instances(batch, "replace")

    assert outcomes == [
        AddOutcome(AddKind.REPLACED, "1.1.1", blob("first").sha256),
        AddOutcome(AddKind.STORED, "1.1.2"),
        AddOutcome(AddKind.REPLACED, "1.1.1", blob("second").sha256),
    ]
    row = await index.get_instance("1.1.1")
    assert row is not None
    assert row.blob_sha256 == blob("first").sha256
    assert await rows(engine, "SELECT number_of_instances FROM study") == [(2,)]


async def test_a_duplicate_creates_no_parents(index: Index, engine: AsyncEngine) -> None:
    await index.add_instances([record("1.1.1")], "keep")

    outcomes = await index.add_instances(
        [record("1.1.1", patient_id="P2", study_uid="9.9", series_uid="9.9.1")], "keep"
    )

    assert kinds(outcomes) == [AddKind.IDENTICAL]
    assert await rows(engine, "SELECT count(*) FROM patient") == [(1,)]
    assert await rows(engine, "SELECT count(*) FROM study") == [(1,)]
    assert await rows(engine, "SELECT count(*) FROM series") == [(1,)]


async def test_get_instance_returns_the_file_and_hierarchy(index: Index) -> None:
    await index.add_instances([record("1.1.7")], "keep")

    row = await index.get_instance("1.1.7")

    assert row is not None
    assert (row.study_instance_uid, row.series_instance_uid) == (STUDY, SERIES)
    assert (row.sop_class_uid, row.instance_number) == (CT_IMAGE, 7)
    assert row.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert row.blob_sha256 == blob("1.1.7").sha256
    assert row.attributes == {"00080018": {"vr": "UI", "Value": ["1.1.7"]}}
    assert row.source_ae_title == "MODALITY"
    assert row.received_at.tzinfo is not None
    assert await index.get_instance("1.1.8") is None


async def test_empty_batch_touches_nothing(index: Index) -> None:
    assert await index.add_instances([], "keep") == []


async def test_unknown_policy_is_refused(index: Index) -> None:
    with pytest.raises(ValueError, match="overwrite"):
        await index.add_instances([record("1.1.1")], "overwrite")


@pytest.mark.postgres
async def test_unreachable_database_is_store_unavailable() -> None:
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/postgres")
    try:
        with pytest.raises(StoreUnavailable, match="index database unavailable"):
            await Index(create_sessionmaker(engine)).add_instances([record("1.1.1")], "keep")
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_silent_database_server_fails_after_the_connect_timeout() -> None:
    """A server that accepts TCP but never answers (a hung host) must not hang a store:
    [database] connect_timeout ends it, so a store on an engine set shorter fails while
    one set longer still waits."""
    held: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x"
    short = create_engine(url, PoolLimits(connect_timeout=0.5))
    long = create_engine(url, PoolLimits(connect_timeout=60))
    waiting = asyncio.create_task(
        Index(create_sessionmaker(long)).add_instances([record("1.1.2")], "keep")
    )
    try:
        with pytest.raises(StoreUnavailable, match="index database unavailable: TimeoutError"):
            await Index(create_sessionmaker(short)).add_instances([record("1.1.1")], "keep")
        # The same silence, with a longer connect_timeout, is still being waited out.
        assert not waiting.done()
    finally:
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await short.dispose()
        await long.dispose()
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()


class _Awaited(Future[BlobRef]):
    """A file still being stored that tells when the index starts waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited = threading.Event()

    def result(self, timeout: float | None = None) -> BlobRef:
        self.awaited.set()
        return super().result(timeout)

    def add_done_callback(self, fn: Callable[[Future[BlobRef]], object]) -> None:
        self.awaited.set()
        super().add_done_callback(fn)


async def test_rows_commit_only_once_the_files_are_stored(
    index: Index, engine: AsyncEngine
) -> None:
    file_stored = _Awaited()
    adding = asyncio.ensure_future(index.add_instances([record("1.1.1")], "keep", [file_stored]))
    assert await asyncio.to_thread(file_stored.awaited.wait, 10)

    try:
        assert not adding.done()
        assert await rows(engine, "SELECT sop_instance_uid FROM instance") == []
    finally:  # a writer left waiting would hang the teardown
        file_stored.set_result(blob("1.1.1"))
    assert kinds(await adding) == [AddKind.STORED]
    assert await rows(engine, "SELECT sop_instance_uid FROM instance") == [("1.1.1",)]


async def test_a_file_that_fails_to_store_rolls_the_batch_back(
    index: Index, engine: AsyncEngine
) -> None:
    stored: Future[BlobRef] = Future()
    stored.set_result(blob("1.1.1"))
    failed: Future[BlobRef] = Future()
    failed.set_exception(StoreUnavailable("cannot commit to the store: disk gone"))

    with pytest.raises(StoreUnavailable, match="disk gone"):
        await index.add_instances([record("1.1.1"), record("1.1.2")], "keep", [stored, failed])

    assert await rows(engine, "SELECT sop_instance_uid FROM instance") == []
    assert await rows(engine, "SELECT number_of_instances FROM study") == []
