"""C-MOVE and C-GET to peers with a de-identification profile, against the real server."""

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_role, evt

from pacs.audit.events import EventKind
from pacs.index.deidentified import pseudonyms, replacement_uids
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs, write_config

STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
SUCCESS, WARNING = 0x0000, 0xB000
PATIENT_ID, PATIENT_NAME = "DEID-PATIENT-7", "Doe^Jane"


@dataclass
class Received:
    """What a receiver got: each data set as decoded and as its bytes, by its SOP Instance UID,
    and the SOP Instance UID each C-STORE-RQ named."""

    datasets: dict[str, Dataset] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    affected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_store(self, event: Any) -> int:
        ds = event.dataset
        with self.lock:
            uid = str(ds.SOPInstanceUID)
            self.datasets[uid] = ds
            self.raw[uid] = event.request.DataSet.getvalue()
            self.affected.append(str(event.request.AffectedSOPInstanceUID))
        return 0


@pytest.fixture
def research() -> Iterator[tuple[int, Received]]:
    """A pynetdicom storage SCP as the research peer; Implicit VR only, so that what pacs
    stores as Explicit VR is de-identified and then converted."""
    ae = AE(ae_title="RESEARCH")
    ae.add_supported_context(CT, [ImplicitVRLittleEndian])
    received = Received()
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, received.on_store)]
    )
    assert server is not None
    yield server.server_address[1], received
    server.shutdown()


@dataclass
class Study:
    pacs: PacsAddress
    uid: str
    series: list[str]
    sources: list[Dataset]  # the instances that may go out
    burned_in: str  # the SOP Instance UID of one that may not


async def _study(start_pacs: StartPacs, research_port: int, **sections: Any) -> Study:
    pacs = await start_pacs(
        **sections,
        peers=[
            {
                "ae_title": "RESEARCH",
                "host": "127.0.0.1",
                "port": research_port,
                "deidentify": "basic",
            },
            {"ae_title": "GETTER", "host": "127.0.0.1", "port": 1, "deidentify": "basic"},
        ],
    )
    study, series = str(generate_uid()), [str(generate_uid()), str(generate_uid())]
    sources = [
        make_instance(
            StudyInstanceUID=study,
            SeriesInstanceUID=s,
            PatientID=PATIENT_ID,
            PatientName=PATIENT_NAME,
            InstanceNumber=i,
            BurnedInAnnotation="NO",
        )
        for s in series
        for i in range(2)
    ]
    reference = Dataset()
    reference.ReferencedSOPClassUID = CT
    reference.ReferencedSOPInstanceUID = sources[0].SOPInstanceUID
    sources[1].ReferencedImageSequence = [reference]
    burned = make_instance(
        StudyInstanceUID=study,
        SeriesInstanceUID=series[0],
        PatientID=PATIENT_ID,
        BurnedInAnnotation="YES",
    )
    datasets = [*sources, burned]
    assert await asyncio.to_thread(scu.store, pacs, datasets) == [SUCCESS] * len(datasets)
    return Study(pacs, study, series, sources, str(burned.SOPInstanceUID))


def _identifier(study: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study
    return ds


def _move(address: PacsAddress, study: str) -> Dataset:
    ae = AE(ae_title="WORKSTATION")
    ae.add_requested_context(STUDY_ROOT_MOVE)
    assoc = ae.associate(address.host, address.port, ae_title=address.ae_title)
    assert assoc.is_established
    last = Dataset()
    try:
        for response, answer in assoc.send_c_move(_identifier(study), "RESEARCH", STUDY_ROOT_MOVE):
            last = response
            if answer is not None and "FailedSOPInstanceUIDList" in answer:
                last.FailedSOPInstanceUIDList = answer.FailedSOPInstanceUIDList
    finally:
        assoc.release()
    return last


def _get(address: PacsAddress, study: str, received: Received) -> Dataset:
    return _get_as(address, study, received, "GETTER")


def _get_as(address: PacsAddress, study: str, received: Received, calling: str) -> Dataset:
    ae = AE(ae_title=calling)
    ae.add_requested_context(STUDY_ROOT_GET)
    ae.add_requested_context(CT, [ExplicitVRLittleEndian])
    assoc = ae.associate(
        address.host,
        address.port,
        ae_title=address.ae_title,
        ext_neg=[build_role(CT, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, received.on_store)],
    )
    assert assoc.is_established
    last = Dataset()
    try:
        for response, answer in assoc.send_c_get(_identifier(study), STUDY_ROOT_GET):
            last = response
            if answer is not None and "FailedSOPInstanceUIDList" in answer:
                last.FailedSOPInstanceUIDList = answer.FailedSOPInstanceUIDList
    finally:
        assoc.release()
    return last


def _check_no_identity(study: Study, received: Received) -> None:
    """No original name, Patient ID or UID in the bytes received; the C-STORE-RQs named the
    new SOP Instance UIDs; one new study, as many new series as the original."""
    originals = [PATIENT_ID.encode(), b"Doe", b"Jane", study.uid.encode()]
    originals += [uid.encode() for uid in study.series]
    originals += [str(ds.SOPInstanceUID).encode() for ds in study.sources]
    assert len(received.raw) == len(study.sources)
    for uid, data in received.raw.items():
        assert [value for value in originals if value in data] == [], uid
    assert sorted(received.affected) == sorted(received.datasets)
    datasets = list(received.datasets.values())
    assert {ds.PatientIdentityRemoved for ds in datasets} == {"YES"}
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert len({ds.SeriesInstanceUID for ds in datasets}) == len(study.series)
    assert {str(ds.PatientID) for ds in datasets} == {str(datasets[0].PatientName)}


async def _check_mapping(study: Study, received: Received, refused_listed: bool = False) -> None:
    """The index holds what each original became; references resolve to the new UIDs."""
    assert study.pacs.app is not None
    engine = study.pacs.app.engine
    uids = await replacement_uids(engine, "basic")
    for source in study.sources:
        sent = received.datasets[uids[str(source.SOPInstanceUID)]]
        assert sent.StudyInstanceUID == uids[study.uid]
        assert sent.SeriesInstanceUID == uids[str(source.SeriesInstanceUID)]
        assert sent.InstanceNumber == source.InstanceNumber
    referring = received.datasets[uids[str(study.sources[1].SOPInstanceUID)]]
    referenced = referring.ReferencedImageSequence[0].ReferencedSOPInstanceUID
    assert referenced == uids[str(study.sources[0].SOPInstanceUID)]
    assert (study.burned_in in uids) == refused_listed  # only when the recipient was told
    patients = await pseudonyms(engine, "basic")
    pseudonym, shift = patients[("", PATIENT_ID)]
    assert {ds.PatientID for ds in received.datasets.values()} == {pseudonym}
    assert shift < 0


async def test_move_to_a_deidentifying_peer_sends_no_identity_and_refuses_burned_in(
    start_pacs: StartPacs, research: tuple[int, Received], tmp_path: Path
) -> None:
    port, received = research
    audit_file = tmp_path / "audit.jsonl"
    study = await _study(start_pacs, port, audit={"file": audit_file})

    last = await asyncio.to_thread(_move, study.pacs, study.uid)

    assert int(last.Status) == WARNING
    assert last.NumberOfCompletedSuboperations == len(study.sources)
    assert last.NumberOfFailedSuboperations == 1
    assert last.FailedSOPInstanceUIDList == study.burned_in  # a single value
    _check_no_identity(study, received)
    await _check_mapping(study, received)

    first = dict(received.datasets)
    received.datasets.clear()
    received.raw.clear()
    again = await asyncio.to_thread(_move, study.pacs, study.uid)

    assert again.NumberOfCompletedSuboperations == len(study.sources)
    assert set(received.datasets) == set(first)
    assert {ds.StudyInstanceUID for ds in received.datasets.values()} == {
        ds.StudyInstanceUID for ds in first.values()
    }
    await _audited(audit_file, study.uid)


def _transferred(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines() if path.exists() else []
    events = [json.loads(line) for line in lines]
    kind = EventKind.INSTANCES_TRANSFERRED.value
    return [e for e in events if e["event"] == kind and e["action"] == "R"]  # read: sent


async def _audited(audit_file: Path, study_uid: str) -> None:
    """Both moves are in the audit trail: the original study, to RESEARCH, under "basic"."""
    async with asyncio.timeout(60):
        while len(_transferred(audit_file)) < 2:
            await asyncio.sleep(0.05)  # the audit thread writes on its own schedule
    for event in _transferred(audit_file):
        assert [p["ae_title"] for p in event["participants"]] == ["PACS", "RESEARCH", "WORKSTATION"]
        assert event["studies"][0]["study_instance_uid"] == study_uid
        assert event["description"].endswith("de-identified under profile 'basic'")


async def test_get_by_a_deidentifying_peer_sends_no_identity(
    start_pacs: StartPacs, research: tuple[int, Received]
) -> None:
    port, _ = research
    study = await _study(start_pacs, port)
    received = Received()

    last = await asyncio.to_thread(_get, study.pacs, study.uid, received)

    assert int(last.Status) == WARNING
    assert last.NumberOfCompletedSuboperations == len(study.sources)
    assert last.NumberOfFailedSuboperations == 1
    _check_no_identity(study, received)
    await _check_mapping(study, received, refused_listed=True)
    assert study.pacs.app is not None
    uids = await replacement_uids(study.pacs.app.engine, "basic")
    assert last.FailedSOPInstanceUIDList == uids[study.burned_in]  # not the original


async def test_stored_originals_are_unchanged_and_plain_peers_get_them(
    start_pacs: StartPacs, research: tuple[int, Received]
) -> None:
    port, received = research
    study = await _study(start_pacs, port)
    await asyncio.to_thread(_move, study.pacs, study.uid)

    assert len(received.datasets) == len(study.sources)
    plain = Received()

    last = await asyncio.to_thread(_get_as, study.pacs, study.uid, plain, "PLAIN")

    assert last.NumberOfCompletedSuboperations == len(study.sources) + 1
    assert {str(ds.PatientID) for ds in plain.datasets.values()} == {PATIENT_ID}
    assert {str(ds.PatientName) for ds in plain.datasets.values()} == {PATIENT_NAME}
    assert "PatientIdentityRemoved" not in plain.datasets[str(study.sources[0].SOPInstanceUID)]
    assert set(plain.datasets) == {str(ds.SOPInstanceUID) for ds in study.sources} | {
        study.burned_in
    }


async def test_reload_turns_deidentification_on_for_new_transfers(
    start_pacs: StartPacs, research: tuple[int, Received]
) -> None:
    port, received = research
    pacs = await start_pacs(peers=[{"ae_title": "RESEARCH", "host": "127.0.0.1", "port": port}])
    assert pacs.app is not None and pacs.directory is not None
    ds = make_instance(PatientID=PATIENT_ID, BurnedInAnnotation="NO")
    assert await asyncio.to_thread(scu.store, pacs, [ds]) == [SUCCESS]
    await asyncio.to_thread(_move, pacs, str(ds.StudyInstanceUID))
    assert set(received.datasets) == {str(ds.SOPInstanceUID)}

    peer = {"ae_title": "RESEARCH", "host": "127.0.0.1", "port": port, "deidentify": "teaching"}
    write_config(
        pacs.directory,
        peers=[peer],
        database={"url": pacs.app.settings.database.url},
        **{"deidentify.teaching": {"dates": "shift"}},
    )
    pacs.app.config_path = pacs.directory / "pacs.toml"
    pacs.app.reload()
    received.datasets.clear()
    await asyncio.to_thread(_move, pacs, str(ds.StudyInstanceUID))

    (sent,) = received.datasets.values()
    assert sent.SOPInstanceUID != ds.SOPInstanceUID
    assert sent.LongitudinalTemporalInformationModified == "MODIFIED"
    uids = await replacement_uids(pacs.app.engine, "teaching")
    assert uids[str(ds.SOPInstanceUID)] == sent.SOPInstanceUID

    # A profile whose secret cannot be read: the reload changes nothing at all.
    peer["deidentify"] = "locked"
    write_config(
        pacs.directory,
        peers=[peer],
        database={"url": pacs.app.settings.database.url},
        **{"deidentify.locked": {"secret_file": pacs.directory / "missing.secret"}},
    )
    pacs.app.reload()
    received.datasets.clear()
    await asyncio.to_thread(_move, pacs, str(ds.StudyInstanceUID))

    assert set(received.datasets) == {sent.SOPInstanceUID}
