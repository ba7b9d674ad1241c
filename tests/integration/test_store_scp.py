"""C-STORE against the real server: durable, byte-exact, and a clear answer for bad input."""

import asyncio
import hashlib
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    MRImageStorage,
    RLELossless,
    SegmentationStorage,
    generate_uid,
)
from pynetdicom import AE
from pynetdicom.dsutils import encode

from pacs.index.records import InstanceRow
from pacs.net.command_set import ReceivedCommand
from pacs.net.contexts import proposal
from pacs.net.dimse import Command
from pacs.net.handshake import request_association
from pacs.net.timeouts import Timeouts
from tests.conftest import DatasetFactory, make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs, run_dcmtk

SUCCESS = 0x0000
DUPLICATE = 0x0111
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
CT = "1.2.840.10008.5.1.4.1.1.2"


def _store(address: PacsAddress, datasets: list[Dataset], transfer_syntax: str) -> list[int]:
    """Store with pynetdicom on one association proposing only `transfer_syntax`."""
    ae = AE(ae_title="MODALITY")
    for uid in {str(ds.SOPClassUID) for ds in datasets}:
        ae.add_requested_context(uid, [transfer_syntax])
    assoc = ae.associate(address.host, address.port, ae_title=address.ae_title)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


async def store(
    address: PacsAddress, *datasets: Dataset, syntax: str = ExplicitVRLittleEndian
) -> list[int]:
    return await asyncio.to_thread(_store, address, list(datasets), syntax)


async def indexed(address: PacsAddress, sop_instance_uid: str) -> InstanceRow | None:
    assert address.app is not None
    return await address.app.index.get_instance(sop_instance_uid)


def stored_bytes(address: PacsAddress, row: InstanceRow) -> bytes:
    assert address.app is not None
    with address.app.store.open(row.blob_sha256) as blob:
        data = blob.read()
    assert hashlib.sha256(data).hexdigest() == row.blob_sha256
    return data


def _encoded(ds: Dataset, syntax: str) -> bytes:
    uid = UID(syntax)
    data = encode(ds, uid.is_implicit_VR, uid.is_little_endian, uid.is_deflated)
    assert data is not None
    return bytes(data)


async def test_a_stored_instance_is_byte_identical_and_indexed(
    running_pacs: PacsAddress, make_ct: DatasetFactory
) -> None:
    ct = make_ct()

    assert await store(running_pacs, ct) == [SUCCESS]

    row = await indexed(running_pacs, ct.SOPInstanceUID)
    assert row is not None
    assert (row.sop_class_uid, row.transfer_syntax_uid) == (CT, ExplicitVRLittleEndian)
    assert (row.study_instance_uid, row.series_instance_uid) == (
        ct.StudyInstanceUID,
        ct.SeriesInstanceUID,
    )
    assert row.source_ae_title == "MODALITY"
    data = stored_bytes(running_pacs, row)
    assert data.endswith(_encoded(ct, ExplicitVRLittleEndian))
    assert row.blob_size == len(data)
    stored = dcmread(running_pacs.app.store.path_of(row.blob_sha256))  # type: ignore[union-attr]
    assert stored.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert stored.file_meta.MediaStorageSOPInstanceUID == ct.SOPInstanceUID
    assert stored.PatientName == "Doe^Jane"


async def test_stored_data_survives_a_restart(
    start_pacs: StartPacs, make_ct: DatasetFactory, storage_backend: dict[str, Any]
) -> None:
    first = await start_pacs(storage=storage_backend)
    ct = make_ct()
    assert await store(first, ct) == [SUCCESS]
    assert first.app is not None
    await first.app.stop(grace=1)

    again = await start_pacs(directory=first.directory, storage=storage_backend)

    row = await indexed(again, ct.SOPInstanceUID)
    assert row is not None
    assert stored_bytes(again, row).endswith(_encoded(ct, ExplicitVRLittleEndian))


def _compressed(syntax: str) -> Dataset:
    ds = make_instance()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.PixelData = encapsulate([b"\xff\xd8 compressed frame bytes \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


UNCOMPRESSED = [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian]
COMPRESSED = [
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]


@pytest.mark.parametrize("syntax", [*UNCOMPRESSED, DeflatedExplicitVRLittleEndian, *COMPRESSED])
async def test_every_transfer_syntax_is_stored_as_sent(
    running_pacs: PacsAddress, syntax: str
) -> None:
    ds = _compressed(syntax) if syntax in COMPRESSED else make_instance()
    ds.file_meta.TransferSyntaxUID = UID(syntax)

    assert await store(running_pacs, ds, syntax=syntax) == [SUCCESS]

    row = await indexed(running_pacs, ds.SOPInstanceUID)
    assert row is not None
    assert row.transfer_syntax_uid == syntax
    assert stored_bytes(running_pacs, row).endswith(_encoded(ds, syntax))


async def test_segmentation_and_mr_objects_are_accepted(running_pacs: PacsAddress) -> None:
    seg = make_instance(SOPClassUID=SegmentationStorage, Modality="SEG")
    mr = make_instance(SOPClassUID=MRImageStorage, Modality="MR")

    assert await store(running_pacs, seg, mr) == [SUCCESS, SUCCESS]


async def _send_raw(
    address: PacsAddress, sop_class: str, sop_instance: str, data: bytes
) -> ReceivedCommand:
    """Send a C-STORE-RQ whose data set is exactly `data`, on our own requestor."""
    assoc = await request_association(
        address.host,
        address.port,
        calling_ae_title="RAW",
        called_ae_title=address.ae_title,
        contexts=[proposal(sop_class, [ExplicitVRLittleEndian])],
        timeouts=Timeouts(acse=5, dimse=10, network=10),
        max_pdu_length=0,
    )
    command = {
        "CommandField": Command.C_STORE_RQ,
        "AffectedSOPClassUID": sop_class,
        "AffectedSOPInstanceUID": sop_instance,
        "Priority": 0,
    }
    try:
        response = await assoc.request_final(1, command, data)
        return response.command
    finally:
        await assoc.release()


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("SOPInstanceUID", "SOPInstanceUID"),
        ("StudyInstanceUID", "StudyInstanceUID"),
        ("SeriesInstanceUID", "SeriesInstanceUID"),
    ],
)
async def test_a_data_set_without_a_required_uid_is_refused_with_the_reason(
    running_pacs: PacsAddress, missing: str, expected: str
) -> None:
    uid = generate_uid()
    ds = make_instance(SOPInstanceUID=uid)
    delattr(ds, missing)

    response = await _send_raw(running_pacs, CT, uid, _encoded(ds, ExplicitVRLittleEndian))

    assert response.Status == CANNOT_UNDERSTAND
    assert expected in response.ErrorComment
    assert await indexed(running_pacs, uid) is None
    assert await asyncio.to_thread(scu.echo, running_pacs) == SUCCESS


async def test_a_data_set_of_another_sop_class_gets_a900(running_pacs: PacsAddress) -> None:
    ds = make_instance(SOPClassUID=MRImageStorage)

    response = await _send_raw(
        running_pacs, CT, ds.SOPInstanceUID, _encoded(ds, ExplicitVRLittleEndian)
    )

    assert response.Status == DOES_NOT_MATCH
    assert MRImageStorage in response.ErrorComment
    assert await indexed(running_pacs, ds.SOPInstanceUID) is None


async def test_a_command_for_another_sop_class_than_its_context_gets_a900(
    running_pacs: PacsAddress,
) -> None:
    ds = make_instance()
    assoc = await request_association(
        running_pacs.host,
        running_pacs.port,
        calling_ae_title="RAW",
        called_ae_title="PACS",
        contexts=[proposal(CT, [ExplicitVRLittleEndian])],
        timeouts=Timeouts(acse=5, dimse=10, network=10),
        max_pdu_length=0,
    )
    command = {
        "CommandField": Command.C_STORE_RQ,
        "AffectedSOPClassUID": MRImageStorage,
        "AffectedSOPInstanceUID": ds.SOPInstanceUID,
        "Priority": 0,
    }
    response = await assoc.request_final(1, command, _encoded(ds, ExplicitVRLittleEndian))
    await assoc.release()

    assert response.status == DOES_NOT_MATCH


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"\x08\x00\x16\x00UI\xff\x7fjunk" + data[40:], id="garbage"),
        pytest.param(lambda data: data[: len(data) - 100], id="cut-short"),
    ],
)
async def test_an_unparseable_or_truncated_data_set_gets_c000(
    running_pacs: PacsAddress, damage: Callable[[bytes], bytes]
) -> None:
    ds = make_instance()

    response = await _send_raw(
        running_pacs, CT, ds.SOPInstanceUID, damage(_encoded(ds, ExplicitVRLittleEndian))
    )

    assert response.Status == CANNOT_UNDERSTAND
    assert response.ErrorComment
    assert await indexed(running_pacs, ds.SOPInstanceUID) is None
    assert await asyncio.to_thread(scu.echo, running_pacs) == SUCCESS


async def test_a_full_disk_answers_a700_and_indexes_nothing(start_pacs: StartPacs) -> None:
    pacs = await start_pacs(storage={"min_free_bytes": 2**62})
    ds = make_instance()

    statuses = await store(pacs, ds)

    assert statuses == [OUT_OF_RESOURCES]
    assert await indexed(pacs, ds.SOPInstanceUID) is None
    assert await asyncio.to_thread(scu.echo, pacs) == SUCCESS


@pytest.mark.parametrize(
    ("policy", "status", "kept"),
    [("keep", SUCCESS, "first"), ("replace", SUCCESS, "second"), ("reject", DUPLICATE, "first")],
)
async def test_duplicates_follow_the_policy(
    start_pacs: StartPacs, policy: str, status: int, kept: str, storage_backend: dict[str, Any]
) -> None:
    pacs = await start_pacs(storage={**storage_backend, "duplicate_policy": policy})
    first = make_instance(SeriesDescription="first")
    second = make_instance(
        SOPInstanceUID=first.SOPInstanceUID,
        StudyInstanceUID=first.StudyInstanceUID,
        SeriesInstanceUID=first.SeriesInstanceUID,
        SeriesDescription="second",
    )
    assert await store(pacs, first) == [SUCCESS]

    assert await store(pacs, second) == [status]

    row = await indexed(pacs, first.SOPInstanceUID)
    assert row is not None
    expected = first if kept == "first" else second
    assert stored_bytes(pacs, row).endswith(_encoded(expected, ExplicitVRLittleEndian))
    assert await store(pacs, expected) == [SUCCESS]  # the same bytes again: always fine


async def test_dcmtk_storescu_stores_a_file(
    running_pacs: PacsAddress, make_ct: DatasetFactory, tmp_path: Path
) -> None:
    ct = make_ct()
    path = tmp_path / "ct.dcm"
    ct.save_as(path, enforce_file_format=True)

    code, output = await run_dcmtk(
        "storescu", "-v", running_pacs.host, str(running_pacs.port), str(path)
    )

    assert code == 0, output
    assert "Received Store Response (Success)" in output
    row = await indexed(running_pacs, ct.SOPInstanceUID)
    assert row is not None
    assert row.source_ae_title == "STORESCU"


def _large_ct(mib: int) -> Dataset:
    """A CT instance whose pixel data is `mib` MiB of varied bytes: many PDUs, many reads."""
    ds = make_instance()
    ds.Rows = ds.Columns = 512
    frame = bytes(range(256)) * (512 * 512 * 2 // 256)
    ds.NumberOfFrames = 2 * mib
    ds.PixelData = b"".join(frame[k:] + frame[:k] for k in range(2 * mib))
    return ds


async def test_a_data_set_of_many_pdus_and_reads_is_stored_byte_identical(
    running_pacs: PacsAddress, tmp_path: Path
) -> None:
    large = _large_ct(6)
    path = tmp_path / "large.dcm"
    large.save_as(path, enforce_file_format=True)

    # storescu sends PDUs of pacs's maximum length; pynetdicom's SCU smaller ones.
    code, output = await run_dcmtk("storescu", running_pacs.host, str(running_pacs.port), str(path))
    again = make_instance(SOPInstanceUID=generate_uid(), StudyInstanceUID=large.StudyInstanceUID)
    again.Rows, again.Columns, again.NumberOfFrames = 512, 512, large.NumberOfFrames
    again.PixelData = large.PixelData[1:] + large.PixelData[:1]
    assert await store(running_pacs, again) == [SUCCESS]

    assert code == 0, output
    for ds in (large, again):
        row = await indexed(running_pacs, ds.SOPInstanceUID)
        assert row is not None
        assert stored_bytes(running_pacs, row).endswith(_encoded(ds, ExplicitVRLittleEndian))


@pytest.mark.parametrize("name", ["CT_small.dcm", "examples_overlay.dcm"])
async def test_binary_elements_before_the_pixels_are_stored(
    running_pacs: PacsAddress, name: str
) -> None:
    # CT_small has private OB elements (a GE CT's header does), examples_overlay OW overlay data.
    ds = dcmread(str(get_testdata_file(name)))

    assert await asyncio.to_thread(scu.store, running_pacs, [ds]) == [SUCCESS]
    row = await indexed(running_pacs, ds.SOPInstanceUID)
    assert row is not None
    assert dcmread(BytesIO(stored_bytes(running_pacs, row))).PixelData == ds.PixelData
