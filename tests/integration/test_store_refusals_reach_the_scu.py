"""Refused C-STOREs, repeated against a pynetdicom SCU: every failure response must arrive.

Issue 16 reported 0xC000 responses that a pynetdicom SCU never received. The SCU
had sent its request with `assoc.dimse.send_msg` and waited with
`assoc.dimse.get_msg(block=True)` while pynetdicom's association reactor was
running: that thread polls the same DIMSE message queue every millisecond and
drops any response it takes (pynetdicom association.py, `_run_reactor` ->
`_serve_request`: "Received unexpected C-STORE service message"). It took
success responses just as often. pynetdicom's own `send_c_store` pauses the
reactor first, so these tests send the malformed data sets through it, from a
file whose data set pynetdicom sends as it is (STORE_SEND_CHUNKED_DATASET).
"""

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.dsutils import encode

from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs

CT = "1.2.840.10008.5.1.4.1.1.2"
CANNOT_UNDERSTAND = 0xC000
SUCCESS = 0x0000
REPEATS = 20
# A lost response fails its repetition after this long, not after pynetdicom's 30 s.
DIMSE_TIMEOUT = 5
# Our smallest PDU limit: the larger data sets reach pacs in several fragments.
MAX_PDU_LENGTH = 4096


def random_bytes(seed: int) -> bytes:
    return random.Random(seed).randbytes(2048)


def _cut(name: str) -> Callable[[int], bytes]:
    """Two thirds of a pydicom test file's data set, cut inside a value."""

    def cut(_: int) -> bytes:
        data = encode(dcmread(str(get_testdata_file(name))), False, True)
        assert data is not None
        return data[: len(data) * 2 // 3]

    return cut


def write_part10(path: Path, sop_instance: str, data_set: bytes) -> Path:
    """A Part 10 file whose data set is `data_set` byte for byte, however broken."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    encoded_meta = DicomBytesIO()
    write_file_meta_info(encoded_meta, meta, enforce_standard=True)
    path.write_bytes(b"\0" * 128 + b"DICM" + encoded_meta.getvalue() + data_set)
    return path


def store_each_on_its_own_association(
    address: PacsAddress, paths: list[Path]
) -> list[tuple[int | None, str, bool]]:
    """(status or None when no response came, ErrorComment, released cleanly) per file."""
    ae = AE(ae_title="MODALITY")
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.add_requested_context(CT, [ExplicitVRLittleEndian])
    results = []
    for path in paths:
        assoc = ae.associate(address.host, address.port, ae_title=address.ae_title)
        assert assoc.is_established
        response = assoc.send_c_store(path)
        assoc.release()
        status = int(response.Status) if "Status" in response else None
        results.append((status, str(response.get("ErrorComment", "")), assoc.is_released))
    return results


@pytest.mark.parametrize(
    "data_set",
    [
        pytest.param(random_bytes, id="2048-random-bytes"),
        pytest.param(_cut("rtplan.dcm"), id="truncated-rtplan"),
        pytest.param(_cut("CT_small.dcm"), id="truncated-ct-in-fragments"),
    ],
)
async def test_every_refusal_reaches_a_pynetdicom_scu(
    start_pacs: StartPacs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    data_set: Callable[[int], bytes],
) -> None:
    pacs = await start_pacs(server={"max_pdu_length": MAX_PDU_LENGTH})
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    paths = [
        write_part10(tmp_path / f"{seed}.dcm", generate_uid(), data_set(seed))
        for seed in range(REPEATS)
    ]

    results = await asyncio.to_thread(store_each_on_its_own_association, pacs, paths)

    assert [status for status, _, _ in results] == [CANNOT_UNDERSTAND] * REPEATS
    assert all(comment for _, comment, _ in results)
    assert all(released for _, _, released in results)
    assert await asyncio.to_thread(scu.echo, pacs) == SUCCESS
