"""WADO-RS over real HTTP: instances, metadata, frames and bulk data through the independent
dicomweb-client, raw bodies and statuses through aiohttp's client and multipart reader."""

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless
from pynetdicom import AE

from pacs.web.credentials import token_sha256
from tests.conftest import make_instance
from tests.integration.conftest import PacsAddress, StartPacs
from tests.integration.test_gc import run_pacs

AS_STORED = (("application/dicom", "*"),)
NATIVE = (("application/dicom", ExplicitVRLittleEndian),)
OHIF_FRAME_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"
FRAMES = 3


def _url(pacs: PacsAddress) -> str:
    assert pacs.app is not None and pacs.app.web is not None
    return pacs.app.web.url


def _store(pacs: PacsAddress, datasets: list[Dataset]) -> list[int]:
    """C-STORE each data set in its own transfer syntax (pynetdicom as the modality)."""
    ae = AE(ae_title="MODALITY")
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def _native_frames() -> np.ndarray[Any, Any]:
    return (np.arange(FRAMES * 32 * 32, dtype=np.uint16) * 7 % 4096).reshape(FRAMES, 32, 32)


def _study() -> tuple[list[Dataset], Dataset, Dataset]:
    """Two single-frame CTs in one series, and in a second series of the same study a
    native multi-frame and a JPEG 2000 Lossless multi-frame instance."""
    ct = [make_instance(InstanceNumber=n) for n in (1, 2)]
    for ds in ct[1:]:
        ds.StudyInstanceUID, ds.SeriesInstanceUID = ct[0].StudyInstanceUID, ct[0].SeriesInstanceUID
    frames = _native_frames()
    native = make_instance(StudyInstanceUID=ct[0].StudyInstanceUID, NumberOfFrames=FRAMES)
    native.Rows = native.Columns = 32
    native.PixelData = frames.tobytes()
    j2k = make_instance(
        StudyInstanceUID=ct[0].StudyInstanceUID,
        SeriesInstanceUID=native.SeriesInstanceUID,
        NumberOfFrames=FRAMES,
        InstanceNumber=2,
    )
    j2k.Rows = j2k.Columns = 32
    j2k.PixelData = frames.tobytes()
    j2k.compress(JPEG2000Lossless, frames)
    return ct, native, j2k


@pytest.fixture
async def stored(start_pacs: StartPacs) -> tuple[PacsAddress, list[Dataset], Dataset, Dataset]:
    pacs = await start_pacs(web={"port": 0})
    ct, native, j2k = _study()
    assert await asyncio.to_thread(_store, pacs, [*ct, native, j2k]) == [0, 0, 0, 0]
    return pacs, ct, native, j2k


def _stored_files(pacs: PacsAddress) -> set[bytes]:
    assert pacs.directory is not None
    store = pacs.directory / "store"
    return {p.read_bytes() for p in store.rglob("*") if p.is_file() and len(p.name) == 64}


async def _parts(url: str, accept: str) -> tuple[int, list[tuple[str, bytes]]]:
    """The status and the (Content-Type, bytes) of each part, read by aiohttp."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Accept": accept}) as r,
    ):
        if r.status != 200:
            return r.status, []
        reader = aiohttp.MultipartReader.from_response(r)
        parts = []
        while (part := await reader.next()) is not None:
            assert isinstance(part, aiohttp.BodyPartReader)
            parts.append((part.headers["Content-Type"], bytes(await part.read())))
        return r.status, parts


async def test_study_as_stored_is_the_stored_files_byte_for_byte(stored: Any) -> None:
    pacs, ct, _native, _j2k = stored
    url = f"{_url(pacs)}/studies/{ct[0].StudyInstanceUID}"

    status, parts = await _parts(
        url, 'multipart/related; type="application/dicom"; transfer-syntax=*'
    )

    assert status == 200
    assert {body for _, body in parts} == _stored_files(pacs)
    syntaxes = sorted(kind.split("transfer-syntax=")[1] for kind, _ in parts)
    assert syntaxes == sorted([ExplicitVRLittleEndian] * 3 + [JPEG2000Lossless])


async def test_dicomweb_client_retrieves_study_series_and_instance(stored: Any) -> None:
    pacs, ct, native, j2k = stored
    client = DICOMwebClient(_url(pacs))
    study = ct[0].StudyInstanceUID

    whole = await asyncio.to_thread(client.retrieve_study, study, media_types=AS_STORED)
    series = await asyncio.to_thread(
        client.retrieve_series, study, j2k.SeriesInstanceUID, media_types=AS_STORED
    )
    one = await asyncio.to_thread(
        client.retrieve_instance,
        study,
        j2k.SeriesInstanceUID,
        j2k.SOPInstanceUID,
        media_types=AS_STORED,
    )

    assert {ds.SOPInstanceUID for ds in whole} == {d.SOPInstanceUID for d in [*ct, native, j2k]}
    assert {ds.SOPInstanceUID for ds in series} == {native.SOPInstanceUID, j2k.SOPInstanceUID}
    assert one.file_meta.TransferSyntaxUID == JPEG2000Lossless
    assert one.PixelData == j2k.PixelData


async def test_compressed_instance_is_decoded_when_native_is_asked(stored: Any) -> None:
    pacs, _ct, _native, j2k = stored
    client = DICOMwebClient(_url(pacs))

    one = await asyncio.to_thread(
        client.retrieve_instance,
        j2k.StudyInstanceUID,
        j2k.SeriesInstanceUID,
        j2k.SOPInstanceUID,
        media_types=NATIVE,
    )

    assert one.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert one.PixelData == _native_frames().tobytes()


async def test_unproducible_syntax_is_406_and_contradictory_accept_is_400(stored: Any) -> None:
    pacs, ct, _native, _j2k = stored
    series = f"{_url(pacs)}/studies/{ct[0].StudyInstanceUID}/series/{ct[0].SeriesInstanceUID}"
    instance = f"{series}/instances/{ct[0].SOPInstanceUID}"
    j2k_only = f'multipart/related; type="application/dicom"; transfer-syntax={JPEG2000Lossless}'

    assert (await _parts(series, j2k_only))[0] == 406
    assert (await _parts(f"{instance}/frames/1", "multipart/related; type=image/jp2"))[0] == 406
    assert (await _parts(series, "multipart/related; type=application/json"))[0] == 406
    contradictory = f"multipart/related; type=image/jpeg; transfer-syntax={JPEG2000Lossless}"
    assert (await _parts(f"{instance}/frames/1", contradictory))[0] == 400
    assert (await _parts(series, 'multipart/related; transfer-syntax="not a uid"'))[0] == 400
    assert (await _parts(f"{instance}/frames/0", OHIF_FRAME_ACCEPT))[0] == 400
    assert (await _parts(f"{instance}/frames/2", OHIF_FRAME_ACCEPT))[0] == 404
    unknown = f"{_url(pacs)}/studies/1.2.3.4/series/{ct[0].SeriesInstanceUID}"
    assert (await _parts(unknown, "*/*"))[0] == 404


async def test_native_frames_are_read_by_offset_with_their_syntax(stored: Any) -> None:
    pacs, _ct, native, _j2k = stored
    client = DICOMwebClient(_url(pacs))
    uids = (native.StudyInstanceUID, native.SeriesInstanceUID, native.SOPInstanceUID)
    frames = _native_frames()

    got = await asyncio.to_thread(
        client.retrieve_instance_frames,
        *uids,
        [3, 1],
        media_types=(("application/octet-stream", "*"),),
    )
    status, parts = await _parts(
        f"{_url(pacs)}/studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}/frames/2",
        OHIF_FRAME_ACCEPT,
    )

    assert got == [frames[2].tobytes(), frames[0].tobytes()]
    assert status == 200
    assert parts == [
        (f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}", frames[1].tobytes())
    ]


async def test_encapsulated_frames_go_as_stored_or_decoded(stored: Any) -> None:
    pacs, _ct, _native, j2k = stored
    client = DICOMwebClient(_url(pacs))
    uids = (j2k.StudyInstanceUID, j2k.SeriesInstanceUID, j2k.SOPInstanceUID)
    encoded = list(generate_frames(j2k.PixelData, number_of_frames=FRAMES))
    frame_url = f"{_url(pacs)}/studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}/frames/2"

    as_stored = await asyncio.to_thread(
        client.retrieve_instance_frames,
        *uids,
        [2, 3],
        media_types=(("application/octet-stream", "*"),),
    )
    decoded = await asyncio.to_thread(
        client.retrieve_instance_frames,
        *uids,
        [3],
        media_types=(("application/octet-stream", ExplicitVRLittleEndian),),
    )
    status, parts = await _parts(frame_url, OHIF_FRAME_ACCEPT)

    assert as_stored == encoded[1:]
    assert decoded == [_native_frames()[2].tobytes()]
    assert status == 200
    assert parts == [(f"application/octet-stream; transfer-syntax={JPEG2000Lossless}", encoded[1])]


async def test_series_metadata_has_bulk_data_uris_and_follows_the_series(stored: Any) -> None:
    pacs, ct, _native, _j2k = stored
    client = DICOMwebClient(_url(pacs))
    study, series = ct[0].StudyInstanceUID, ct[0].SeriesInstanceUID

    first = await asyncio.to_thread(client.retrieve_series_metadata, study, series)
    added = make_instance(StudyInstanceUID=study, SeriesInstanceUID=series, InstanceNumber=3)
    assert await asyncio.to_thread(_store, pacs, [added]) == [0]
    second = await asyncio.to_thread(client.retrieve_series_metadata, study, series)

    assert [m["00080018"]["Value"][0] for m in first] == [ds.SOPInstanceUID for ds in ct]
    assert [m["00080018"]["Value"][0] for m in second][-1] == added.SOPInstanceUID
    for metadata in second:
        assert metadata["00100010"]["Value"][0]["Alphabetic"] == "Doe^Jane"
        assert metadata["00280010"]["Value"] == [16]
        assert set(metadata["7FE00010"]) == {"vr", "BulkDataURI"}
    one = await asyncio.to_thread(
        client.retrieve_instance_metadata, study, series, added.SOPInstanceUID
    )
    assert one == second[-1]
    uri = first[0]["7FE00010"]["BulkDataURI"]
    pixels = await asyncio.to_thread(client.retrieve_bulkdata, uri)
    assert pixels == [ct[0].PixelData]


async def test_study_metadata_holds_every_series(stored: Any) -> None:
    pacs, ct, native, j2k = stored
    client = DICOMwebClient(_url(pacs))

    metadata = await asyncio.to_thread(client.retrieve_study_metadata, ct[0].StudyInstanceUID)

    uids = {m["00080018"]["Value"][0] for m in metadata}
    assert uids == {ds.SOPInstanceUID for ds in [*ct, native, j2k]}
    [j2k_metadata] = [m for m in metadata if m["00080018"]["Value"][0] == j2k.SOPInstanceUID]
    assert j2k_metadata["7FE00010"]["vr"] == "OB" and "InlineBinary" not in j2k_metadata["7FE00010"]


async def test_wado_needs_the_retrieve_permission(start_pacs: StartPacs, tmp_path: Path) -> None:
    peers = [
        {"ae_title": "VIEWER", "host": "127.0.0.1", "port": 104, "allow": ["find", "get"]},
        {"ae_title": "QUERIER", "host": "127.0.0.1", "port": 105, "allow": ["find"]},
    ]
    users = [
        {"name": "viewer", "peer": "VIEWER", "token_sha256": token_sha256("v")},
        {"name": "querier", "peer": "QUERIER", "token_sha256": token_sha256("q")},
    ]
    pacs = await start_pacs(web={"port": 0}, peers=peers, **{"web.users": users})
    ct = make_instance()
    assert await asyncio.to_thread(_store, pacs, [ct]) == [0]
    url = f"{_url(pacs)}/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}/metadata"

    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Authorization": "Bearer q"}) as refused:
            assert refused.status == 403
        async with session.get(url, headers={"Authorization": "Bearer v"}) as allowed:
            assert allowed.status == 200


async def test_series_metadata_follows_a_deleted_instance(start_pacs: StartPacs) -> None:
    pacs = await start_pacs(web={"port": 0})
    assert pacs.directory is not None
    first = make_instance(InstanceNumber=1)
    second = make_instance(
        StudyInstanceUID=first.StudyInstanceUID,
        SeriesInstanceUID=first.SeriesInstanceUID,
        InstanceNumber=2,
    )
    assert await asyncio.to_thread(_store, pacs, [first, second]) == [0, 0]
    client = DICOMwebClient(_url(pacs))
    uids = (first.StudyInstanceUID, first.SeriesInstanceUID)
    before = await asyncio.to_thread(client.retrieve_series_metadata, *uids)

    config = pacs.directory / "pacs.toml"
    code, _out, err = await run_pacs(config, "delete", "--instance", second.SOPInstanceUID, "--yes")
    after = await asyncio.to_thread(client.retrieve_series_metadata, *uids)

    assert code == 0, err
    assert len(before) == 2
    assert [m["00080018"]["Value"][0] for m in after] == [first.SOPInstanceUID]


async def test_frames_of_a_reindexed_instance_are_found_on_first_request(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    live = await start_pacs(web={"port": 0})
    assert live.directory is not None
    _ct, native, j2k = _study()
    assert await asyncio.to_thread(_store, live, [native, j2k]) == [0, 0]
    rebuilt_url = f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.sqlite'}"
    config = live.directory / "pacs.toml"
    code, _out, err = await run_pacs(config, "reindex", "--into", rebuilt_url)
    assert code == 0, err
    # The rebuilt index reads headers through pydicom: no layout until a frame is asked for.
    rebuilt = await start_pacs(
        web={"port": 0},
        database={"url": rebuilt_url},
        storage={"root": live.directory / "store"},
    )
    client = DICOMwebClient(_url(rebuilt))
    as_stored = (("application/octet-stream", "*"),)
    encoded = list(generate_frames(j2k.PixelData, number_of_frames=FRAMES))

    for _ in range(2):  # found, then kept
        got_native = await asyncio.to_thread(
            client.retrieve_instance_frames,
            native.StudyInstanceUID,
            native.SeriesInstanceUID,
            native.SOPInstanceUID,
            [2],
            media_types=as_stored,
        )
        got_j2k = await asyncio.to_thread(
            client.retrieve_instance_frames,
            j2k.StudyInstanceUID,
            j2k.SeriesInstanceUID,
            j2k.SOPInstanceUID,
            [3],
            media_types=as_stored,
        )
        assert got_native == [_native_frames()[1].tobytes()]
        assert got_j2k == [encoded[2]]
