"""C-MOVE and C-GET against the real server, with pynetdicom and DCMTK as receivers."""

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid
from pynetdicom import AE, build_role, evt

from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import (
    PacsAddress,
    StartPacs,
    dcmtk_tool,
    run_dcmtk,
    wait_until_listening,
)

PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
SUCCESS, CANCEL, WARNING, ALL_FAILED, UNKNOWN_DEST = 0x0000, 0xFE00, 0xB000, 0xA702, 0xA801


@dataclass
class Receiver:
    """A pynetdicom storage SCP standing in for a workstation: what it got, in what syntax."""

    port: int
    received: dict[str, Dataset] = field(default_factory=dict)
    syntaxes: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    ae = AE(ae_title="DEST")
    ae.add_supported_context(CT, [ExplicitVRLittleEndian])
    state = Receiver(port=0)
    lock = threading.Lock()

    def on_store(event: Any) -> int:
        if state.delay:
            threading.Event().wait(state.delay)
        ds = event.dataset
        ds.file_meta = event.file_meta
        with lock:
            state.received[str(ds.SOPInstanceUID)] = ds
            state.syntaxes[str(ds.SOPInstanceUID)] = str(event.context.transfer_syntax)
        return 0

    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    assert server is not None
    state.port = server.server_address[1]
    yield state
    server.shutdown()


@dataclass
class Archive:
    pacs: PacsAddress
    study: str
    series: list[str]
    uids: dict[str, list[str]]  # series UID -> instance UIDs


async def _archive(start_pacs: StartPacs, receiver_port: int, per_series: int = 2) -> Archive:
    pacs = await start_pacs(
        peers=[
            {"ae_title": "DEST", "host": "127.0.0.1", "port": receiver_port},
            {"ae_title": "DOWN", "host": "127.0.0.1", "port": 1},
        ]
    )
    study, series = generate_uid(), [generate_uid(), generate_uid()]
    datasets = [
        make_instance(
            StudyInstanceUID=study, SeriesInstanceUID=s, PatientID="RET-1", InstanceNumber=i
        )
        for s in series
        for i in range(per_series)
    ]
    assert await asyncio.to_thread(scu.store, pacs, datasets) == [SUCCESS] * len(datasets)
    uids: dict[str, list[str]] = {str(s): [] for s in series}
    for ds in datasets:
        uids[ds.SeriesInstanceUID].append(ds.SOPInstanceUID)
    return Archive(pacs, study, [str(s) for s in series], uids)


def _identifier(level: str, **keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def _move(
    address: PacsAddress, model: str, destination: str, identifier: Dataset, cancel_after: int = 0
) -> tuple[int, list[Dataset]]:
    """C-MOVE with pynetdicom; final status and every response's command/identifier."""
    ae = AE(ae_title="WORKSTATION")
    ae.add_requested_context(model)
    assoc = ae.associate(address.host, address.port, ae_title=address.ae_title)
    assert assoc.is_established
    statuses: list[Dataset] = []
    try:
        for response, _ in assoc.send_c_move(identifier, destination, model):
            statuses.append(response)
            if cancel_after and len(statuses) == cancel_after:
                assoc.send_c_cancel(1, assoc.accepted_contexts[0].context_id)
    finally:
        assoc.release()
    return int(statuses[-1].Status), statuses


async def test_move_a_study_series_and_image_to_a_pynetdicom_scp(
    start_pacs: StartPacs, receiver: Receiver
) -> None:
    archive = await _archive(start_pacs, receiver.port)
    all_uids = {uid for uids in archive.uids.values() for uid in uids}

    final, responses = await asyncio.to_thread(
        _move,
        archive.pacs,
        STUDY_ROOT_MOVE,
        "DEST",
        _identifier("STUDY", StudyInstanceUID=archive.study),
    )
    assert final == SUCCESS
    assert set(receiver.received) == all_uids
    assert responses[-1].NumberOfCompletedSuboperations == 4
    assert responses[-1].NumberOfFailedSuboperations == 0
    # Pending responses are optional and throttled; the first reports the first sub-operation.
    pending = responses[:-1]
    assert pending and pending[0].NumberOfRemainingSuboperations == 3
    for response in pending:
        assert response.Status == 0xFF00
        done = response.NumberOfCompletedSuboperations + response.NumberOfFailedSuboperations
        assert done + response.NumberOfRemainingSuboperations == 4

    receiver.received.clear()
    series = archive.series[1]
    final, _ = await asyncio.to_thread(
        _move,
        archive.pacs,
        STUDY_ROOT_MOVE,
        "DEST",
        _identifier("SERIES", StudyInstanceUID=archive.study, SeriesInstanceUID=series),
    )
    assert (final, set(receiver.received)) == (SUCCESS, set(archive.uids[series]))

    receiver.received.clear()
    one = archive.uids[series][0]
    final, _ = await asyncio.to_thread(
        _move,
        archive.pacs,
        STUDY_ROOT_MOVE,
        "DEST",
        _identifier(
            "IMAGE", StudyInstanceUID=archive.study, SeriesInstanceUID=series, SOPInstanceUID=one
        ),
    )
    assert (final, set(receiver.received)) == (SUCCESS, {one})

    receiver.received.clear()
    final, _ = await asyncio.to_thread(
        _move, archive.pacs, PATIENT_ROOT_MOVE, "DEST", _identifier("PATIENT", PatientID="RET-1")
    )
    assert (final, set(receiver.received)) == (SUCCESS, all_uids)
    first = receiver.received[one]
    assert first.PatientID == "RET-1"
    assert receiver.syntaxes[one] == ExplicitVRLittleEndian


async def test_unknown_and_unreachable_destinations_fail_with_reasons(
    start_pacs: StartPacs, receiver: Receiver
) -> None:
    archive = await _archive(start_pacs, receiver.port)
    identifier = _identifier("STUDY", StudyInstanceUID=archive.study)

    unknown, responses = await asyncio.to_thread(
        _move, archive.pacs, STUDY_ROOT_MOVE, "NOBODY", identifier
    )
    assert unknown == UNKNOWN_DEST
    assert "NOBODY" in responses[-1].ErrorComment

    down, responses = await asyncio.to_thread(
        _move, archive.pacs, STUDY_ROOT_MOVE, "DOWN", identifier
    )
    assert down == ALL_FAILED
    assert "unreachable" in responses[-1].ErrorComment
    assert await asyncio.to_thread(scu.echo, archive.pacs) == SUCCESS


async def test_cancel_stops_a_move_between_instances(
    start_pacs: StartPacs, receiver: Receiver
) -> None:
    archive = await _archive(start_pacs, receiver.port, per_series=4)
    receiver.delay = 0.2

    final, responses = await asyncio.to_thread(
        _move,
        archive.pacs,
        STUDY_ROOT_MOVE,
        "DEST",
        _identifier("STUDY", StudyInstanceUID=archive.study),
        1,
    )

    assert final == CANCEL
    assert responses[-1].NumberOfCompletedSuboperations < 8
    assert len(receiver.received) == responses[-1].NumberOfCompletedSuboperations


def _get(
    address: PacsAddress, identifier: Dataset, storage: list[tuple[str, list[str]]]
) -> tuple[int, Dataset, dict[str, Dataset]]:
    """C-GET with pynetdicom acting as Storage SCP on its own association."""
    received: dict[str, Dataset] = {}
    ae = AE(ae_title="GETTER")
    ae.add_requested_context(STUDY_ROOT_GET)
    roles: list[Any] = []
    for sop_class, syntaxes in storage:
        ae.add_requested_context(sop_class, syntaxes)
        roles.append(build_role(sop_class, scp_role=True))

    def on_store(event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        received[str(ds.SOPInstanceUID)] = ds
        return 0

    assoc = ae.associate(
        address.host,
        address.port,
        ae_title=address.ae_title,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    last = Dataset()
    try:
        for response, answer in assoc.send_c_get(identifier, STUDY_ROOT_GET):
            last = response
            if answer is not None and "FailedSOPInstanceUIDList" in answer:
                last.FailedSOPInstanceUIDList = answer.FailedSOPInstanceUIDList
    finally:
        assoc.release()
    return int(last.Status), last, received


async def test_get_sends_on_the_requesters_association(
    start_pacs: StartPacs, receiver: Receiver
) -> None:
    archive = await _archive(start_pacs, receiver.port)

    final, last, received = await asyncio.to_thread(
        _get,
        archive.pacs,
        _identifier("STUDY", StudyInstanceUID=archive.study),
        [(CT, [ExplicitVRLittleEndian])],
    )

    assert final == SUCCESS
    assert set(received) == {uid for uids in archive.uids.values() for uid in uids}
    assert last.NumberOfCompletedSuboperations == 4


async def test_get_of_a_class_the_requester_did_not_accept_lists_the_failures(
    start_pacs: StartPacs, receiver: Receiver
) -> None:
    archive = await _archive(start_pacs, receiver.port)
    mr = make_instance(
        SOPClassUID="1.2.840.10008.5.1.4.1.1.4",
        StudyInstanceUID=archive.study,
        PatientID="RET-1",
        Modality="MR",
    )
    assert await asyncio.to_thread(scu.store, archive.pacs, [mr]) == [SUCCESS]

    final, last, received = await asyncio.to_thread(
        _get,
        archive.pacs,
        _identifier("STUDY", StudyInstanceUID=archive.study),
        [(CT, [ExplicitVRLittleEndian])],
    )

    assert final == WARNING
    assert (last.NumberOfCompletedSuboperations, last.NumberOfFailedSuboperations) == (4, 1)
    assert last.FailedSOPInstanceUIDList == mr.SOPInstanceUID  # one UID: a single value
    assert mr.SOPInstanceUID not in received


async def test_rle_is_decompressed_for_a_receiver_that_takes_only_explicit_le(
    start_pacs: StartPacs, receiver: Receiver
) -> None:
    pacs = await start_pacs(
        peers=[{"ae_title": "DEST", "host": "127.0.0.1", "port": receiver.port}]
    )
    original = make_instance(Rows=32, Columns=32)
    pixels = (np.arange(32 * 32, dtype=np.uint16) * 3 % 4096).reshape(32, 32)
    original.PixelData = pixels.tobytes()
    compressed = make_instance(
        **{k: original.get(k) for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")},
        Rows=32,
        Columns=32,
    )
    compressed.PixelData = pixels.tobytes()
    compressed.compress(RLELossless, generate_instance_uid=False)
    stored = await asyncio.to_thread(_store_as, pacs, compressed, RLELossless)
    assert stored == SUCCESS

    final, _ = await asyncio.to_thread(
        _move,
        pacs,
        STUDY_ROOT_MOVE,
        "DEST",
        _identifier("STUDY", StudyInstanceUID=original.StudyInstanceUID),
    )

    assert final == SUCCESS
    assert set(receiver.received) == {original.SOPInstanceUID}, (final, receiver.received.keys())
    got = receiver.received[original.SOPInstanceUID]
    assert receiver.syntaxes[original.SOPInstanceUID] == ExplicitVRLittleEndian
    assert np.array_equal(got.pixel_array, pixels)


def _store_as(address: PacsAddress, ds: Dataset, syntax: str) -> int:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(str(ds.SOPClassUID), [syntax])
    assoc = ae.associate(address.host, address.port)
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


async def test_dcmtk_movescu_to_storescp_and_getscu(
    start_pacs: StartPacs, tmp_path: Path, receiver: Receiver
) -> None:
    storescp_path = dcmtk_tool("storescp")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "storescp"
    out.mkdir()
    storescp = await asyncio.create_subprocess_exec(
        storescp_path,
        "-aet",
        "STORESCP",
        "-od",
        str(out),
        str(port),
        env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"},
    )
    try:
        pacs = await start_pacs(peers=[{"ae_title": "STORESCP", "host": "127.0.0.1", "port": port}])
        study = generate_uid()
        datasets = [make_instance(StudyInstanceUID=study, PatientID="DCMTK") for _ in range(3)]
        assert await asyncio.to_thread(scu.store, pacs, datasets) == [SUCCESS] * 3
        await wait_until_listening(port)

        code, output = await run_dcmtk(
            "movescu",
            "-v",
            "-S",
            "-aem",
            "STORESCP",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study}",
            pacs.host,
            str(pacs.port),
        )
        assert code == 0, output
        assert len(list(out.iterdir())) == 3

        got = tmp_path / "getscu"
        got.mkdir()
        code, output = await run_dcmtk(
            "getscu",
            "-v",
            "-S",
            "-od",
            str(got),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study}",
            pacs.host,
            str(pacs.port),
        )
        assert code == 0, output
        assert len(list(got.iterdir())) == 3
    finally:
        storescp.terminate()
        await storescp.wait()


def _bundled(name: str) -> str:
    """A test file shipped inside pydicom's wheel (nothing is downloaded)."""
    path = get_testdata_file(name)
    assert isinstance(path, str), name
    return path


@pytest.mark.parametrize(
    ("compressed", "reference"),
    [
        ("MR_small_jp2klossless.dcm", "MR_small.dcm"),  # JPEG 2000 lossless
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),  # JPEG-LS lossless
        ("SC_rgb_rle.dcm", "SC_rgb_rle.dcm"),  # RLE, against pydicom's own decode
        ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm"),  # JPEG lossless SV1: the same image
    ],
)
async def test_lossless_syntaxes_reach_an_explicit_le_only_receiver_pixel_for_pixel(
    start_pacs: StartPacs, compressed: str, reference: str
) -> None:
    pacs = await start_pacs()
    source = dcmread(_bundled(compressed))
    expected = dcmread(_bundled(reference)).pixel_array
    assert await asyncio.to_thread(_store_as, pacs, source, source.file_meta.TransferSyntaxUID) == 0

    final, _, received = await asyncio.to_thread(
        _get,
        pacs,
        _identifier("STUDY", StudyInstanceUID=source.StudyInstanceUID),
        [(str(source.SOPClassUID), [ExplicitVRLittleEndian])],
    )

    assert final == SUCCESS
    [got] = received.values()
    assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(got.pixel_array, expected)


async def test_a_destination_that_drops_the_association_still_yields_a_final_response(
    start_pacs: StartPacs,
) -> None:
    ae = AE(ae_title="DEST")
    ae.add_supported_context(CT, [ExplicitVRLittleEndian])
    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(str(event.dataset.SOPInstanceUID))
        if len(received) == 2:
            event.assoc.abort()
        return 0

    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    assert server is not None
    try:
        archive = await _archive(start_pacs, server.server_address[1])
        final, responses = await asyncio.to_thread(
            _move,
            archive.pacs,
            STUDY_ROOT_MOVE,
            "DEST",
            _identifier("STUDY", StudyInstanceUID=archive.study),
        )
    finally:
        server.shutdown()

    assert final in (WARNING, ALL_FAILED)
    last = responses[-1]
    assert last.NumberOfCompletedSuboperations + last.NumberOfFailedSuboperations == 4
    assert last.NumberOfFailedSuboperations >= 2
    assert await asyncio.to_thread(scu.echo, archive.pacs) == SUCCESS


def _open_files_under(directory: Path) -> list[str]:
    """Files under `directory` that this process (the test server's) holds open."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:  # closed since the listing
            continue
        if target.is_relative_to(directory):
            held.append(str(target))
    return held


async def test_instances_larger_than_a_read_arrive_whole_and_a_cancel_leaves_no_file_open(
    start_pacs: StartPacs, receiver: Receiver
) -> None:
    # 1200x1200 16-bit: 2.9 MB, several reads of the stored file, the next one opened ahead.
    pacs = await start_pacs(
        peers=[{"ae_title": "DEST", "host": "127.0.0.1", "port": receiver.port}]
    )
    study = generate_uid()
    pixels = np.arange(1200 * 1200, dtype=np.uint16).reshape(1200, 1200) % 4096
    datasets = [
        make_instance(StudyInstanceUID=study, Rows=1200, Columns=1200, PixelData=pixels.tobytes())
        for _ in range(6)
    ]
    assert await asyncio.to_thread(scu.store, pacs, datasets[:2]) == [SUCCESS] * 2
    whole, _ = await asyncio.to_thread(
        _move, pacs, STUDY_ROOT_MOVE, "DEST", _identifier("STUDY", StudyInstanceUID=study)
    )
    assert whole == SUCCESS
    for ds in datasets[:2]:
        assert receiver.received[ds.SOPInstanceUID].PixelData == ds.PixelData

    assert await asyncio.to_thread(scu.store, pacs, datasets[2:]) == [SUCCESS] * 4
    receiver.received.clear()
    receiver.delay = 0.2
    final, responses = await asyncio.to_thread(
        _move, pacs, STUDY_ROOT_MOVE, "DEST", _identifier("STUDY", StudyInstanceUID=study), 1
    )
    assert final == CANCEL
    assert responses[-1].NumberOfCompletedSuboperations < 6
    assert pacs.directory is not None
    for _ in range(50):  # an instance opened ahead is released when its read ends
        if not _open_files_under(pacs.directory / "store"):
            break
        await asyncio.sleep(0.02)
    assert _open_files_under(pacs.directory / "store") == []
