"""DICOMweb over real HTTP: STOW-RS and QIDO-RS through the independent dicomweb-client,
status codes, credentials, CORS and gzip through aiohttp's client."""

import asyncio
import io
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from dicomweb_client import DICOMwebClient
from pydicom import dcmwrite
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from benchmarks.certificates import make_pki
from pacs.dicom.part10 import HEAD, data_set_offset
from pacs.errors import StartupError
from pacs.web.credentials import hash_password, token_sha256
from tests.conftest import make_instance
from tests.integration.conftest import PacsAddress, StartPacs

TOKEN = "token-of-the-viewer"
PASSWORD = "password-of-the-modality"
PEERS = [
    {"ae_title": "VIEWER", "host": "127.0.0.1", "port": 104, "allow": ["find", "get"]},
    {"ae_title": "MODALITY", "host": "127.0.0.1", "port": 105, "allow": ["store"]},
    # May find, but only from its own network: not from loopback.
    {"ae_title": "REMOTE", "host": "10.1.2.3", "port": 104, "hosts": ["10.1.2.0/24"]},
]
USERS = [
    {"name": "viewer", "peer": "VIEWER", "token_sha256": token_sha256(TOKEN)},
    # Few iterations: the format is the one the file holds, the cost is the test's.
    {"name": "modality", "peer": "MODALITY", "password_hash": hash_password(PASSWORD, 1000)},
    {"name": "remote", "peer": "REMOTE", "token_sha256": token_sha256("token-of-remote")},
]


def _url(pacs: PacsAddress) -> str:
    assert pacs.app is not None and pacs.app.web is not None
    return pacs.app.web.url


def _part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _data_set(file_bytes: bytes) -> bytes:
    return file_bytes[data_set_offset(file_bytes[:HEAD]) :]


def _stored_data_sets(store: Path) -> list[bytes]:
    files = [p for p in store.rglob("*") if p.is_file() and len(p.name) == 64]
    return [_data_set(p.read_bytes()) for p in files]


def _value(result: dict[str, Any], tag: str) -> Any:
    values = result.get(tag, {}).get("Value")
    return values[0] if values else None


def _three_instances() -> list[Dataset]:
    """Two studies of two patients; the first study has a CT and an MR series."""
    first = make_instance(PatientName="Doe^Jane", PatientID="P1")
    mr = make_instance(
        PatientName="Doe^Jane",
        PatientID="P1",
        StudyInstanceUID=first.StudyInstanceUID,
        Modality="MR",
        SOPClassUID="1.2.840.10008.5.1.4.1.1.4",
    )
    other = make_instance(PatientName="Roe^Richard", PatientID="P2", AccessionNumber="ACC-2")
    return [first, mr, other]


async def test_stow_then_qido_through_dicomweb_client(start_pacs: StartPacs) -> None:
    pacs = await start_pacs(web={"port": 0})
    client = DICOMwebClient(_url(pacs))
    sent = _three_instances()
    answer = await asyncio.to_thread(client.store_instances, sent)
    referenced = {item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence}
    assert referenced == {ds.SOPInstanceUID for ds in sent}
    assert "FailedSOPSequence" not in answer
    # Stored as sent: the data sets on disk are the bytes of the parts, byte for byte.
    assert pacs.directory is not None
    stored = _stored_data_sets(pacs.directory / "store")
    for ds in sent:
        assert _data_set(_part10(ds)) in stored

    studies = await asyncio.to_thread(client.search_for_studies)
    assert len(studies) == 2
    jane = next(s for s in studies if _value(s, "00100020") == "P1")
    study_uid = sent[0].StudyInstanceUID
    assert _value(jane, "0020000D") == study_uid
    assert jane["00080061"]["Value"] == ["CT", "MR"]  # ModalitiesInStudy
    assert _value(jane, "00201206") == 2  # NumberOfStudyRelatedSeries
    assert _value(jane, "00201208") == 2  # NumberOfStudyRelatedInstances
    assert _value(jane, "00080056") == "ONLINE"
    # dicomweb-client sends a Host header without the port: RetrieveURL still names it.
    assert _value(jane, "00081190") == f"{_url(pacs)}/studies/{study_uid}"
    for tag in ("00080020", "00080030", "00080050", "00080090", "00100010", "00100030"):
        assert tag in jane, tag  # required by PS3.18 Table 10.6.3-3

    # What OHIF sends: every typed value wrapped in wildcards, limit=101.
    found = await asyncio.to_thread(
        client.search_for_studies, limit=101, offset=0, search_filters={"PatientName": "*oe^r*"}
    )
    assert [_value(s, "00100020") for s in found] == ["P2"]
    found = await asyncio.to_thread(
        client.search_for_studies, search_filters={"ModalitiesInStudy": "MR"}
    )
    assert [_value(s, "0020000D") for s in found] == [study_uid]

    series = await asyncio.to_thread(client.search_for_series, study_uid)
    assert sorted(_value(s, "00080060") for s in series) == ["CT", "MR"]
    assert all(_value(s, "00201209") == 1 for s in series)
    assert "00100020" not in series[0]  # study-relative: no study attributes needed
    mr = sent[1]
    instances = await asyncio.to_thread(
        client.search_for_instances, study_uid, mr.SeriesInstanceUID
    )
    assert [_value(i, "00080018") for i in instances] == [mr.SOPInstanceUID]
    assert _value(instances[0], "00081190").endswith(
        f"/dicom-web/studies/{study_uid}/series/{mr.SeriesInstanceUID}"
        f"/instances/{mr.SOPInstanceUID}"
    )
    everything = await asyncio.to_thread(client.search_for_instances)
    assert len(everything) == 3
    assert all("00100020" in i and "0008103E" in i for i in everything)  # study, series


async def test_limit_offset_and_includefield(start_pacs: StartPacs) -> None:
    pacs = await start_pacs(web={"port": 0})
    client = DICOMwebClient(_url(pacs))
    sent = [make_instance(PatientID=f"P{n}") for n in range(5)]
    await asyncio.to_thread(client.store_instances, sent)
    async with aiohttp.ClientSession() as session:
        url = f"{_url(pacs)}/studies?limit=2&offset=1&includefield=StudyDescription,00081030"
        async with session.get(url) as response:
            assert response.status == 200
            assert "additional results" in response.headers["Warning"]
            page = await response.json(content_type="application/dicom+json")
        async with session.get(f"{_url(pacs)}/studies?limit=2&offset=4") as response:
            assert "Warning" not in response.headers
            last = await response.json(content_type="application/dicom+json")
        async with session.get(f"{_url(pacs)}/studies?includefield=all") as response:
            every = await response.json(content_type="application/dicom+json")
    assert len(page) == 2 and len(last) == 1
    assert len({_value(s, "0020000D") for s in [*page, *last]}) == 3
    assert all(_value(s, "00081030") == "CT CHEST" for s in page)
    assert len(every) == 5 and all("00081030" in s and "00100040" in s for s in every)


BAD_QUERIES = (
    "limit=-1",
    "limit=many",
    "offset=1.5",
    "NoSuchAttribute=1",
    "SeriesDescription=AXIAL",  # a series attribute at the study level
    "StudyDate=-",  # a range with neither end
    "fuzzymatching=maybe",
    "ReferencedSOPSequence.ReferencedSOPInstanceUID=1.2",
)


async def test_bad_search_parameters_are_400(
    running_web: PacsAddress, subtests: pytest.Subtests
) -> None:
    async with aiohttp.ClientSession() as session:
        for query in BAD_QUERIES:
            with subtests.test(query=query):
                async with session.get(f"{_url(running_web)}/studies?{query}") as response:
                    assert response.status == 400, await response.text()


async def test_fuzzymatching_is_ignored_with_a_warning(running_web: PacsAddress) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{_url(running_web)}/studies?fuzzymatching=true&PatientName=doe"
        async with session.get(url) as response:
            assert response.status == 200
            assert "fuzzymatching" in response.headers["Warning"]


@pytest.fixture
async def running_web(start_pacs: StartPacs) -> PacsAddress:
    return await start_pacs(web={"port": 0})


def _multipart(parts: Sequence[bytes]) -> tuple[bytes, str]:
    boundary = "pacs-test-boundary"
    body = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n"
        for p in parts
    )
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


async def _stow(url: str, parts: Sequence[bytes], **headers: str) -> tuple[int, dict[str, Any]]:
    body, content_type = _multipart(parts)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"Content-Type": content_type, **headers}) as response,
    ):
        if response.content_type != "application/dicom+json":
            return response.status, {}
        return response.status, await response.json(content_type=None)


async def test_stow_answers_202_when_some_fail_and_409_when_all_do(
    running_web: PacsAddress,
) -> None:
    study = generate_uid()
    good = make_instance(StudyInstanceUID=study)
    elsewhere = make_instance()  # another study: refused by /studies/{study}
    status, body = await _stow(
        f"{_url(running_web)}/studies/{study}", [_part10(good), _part10(elsewhere)]
    )
    assert status == 202
    assert _value(body["00081199"]["Value"][0], "00081155") == good.SOPInstanceUID
    failed = body["00081198"]["Value"]
    assert _value(failed[0], "00081155") == elsewhere.SOPInstanceUID
    assert _value(failed[0], "00081197") == 0xA900
    assert _value(body, "00081190") == f"{_url(running_web)}/studies/{study}"

    not_storage = make_instance(SOPClassUID="1.2.840.10008.5.1.4.1.2.2.1")  # a C-FIND class
    parts = [b"not DICOM at all" * 20, _part10(not_storage)]
    status, body = await _stow(f"{_url(running_web)}/studies", parts)
    assert status == 409
    failed = body["00081198"]["Value"]  # in the body's order
    assert [_value(item, "00081197") for item in failed] == [0xC000, 0x0122]
    assert _value(failed[1], "00081155") == not_storage.SOPInstanceUID
    assert "00081199" not in body


async def test_stow_refuses_other_media_types_and_broken_bodies(running_web: PacsAddress) -> None:
    url = f"{_url(running_web)}/studies"
    related = 'multipart/related; type="application/dicom"'
    cases = [
        ("application/dicom+json", b"{}", 415),
        (related, b"--x\r\n", 400),  # no boundary parameter
        (f"{related}; boundary=abc", b"no boundary in here", 400),
        (f"{related}; boundary=abc", b"--abc--\r\n", 400),  # no part
    ]
    async with aiohttp.ClientSession() as session:
        for content_type, body, status in cases:
            headers = {"Content-Type": content_type}
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == status, (content_type, body)


async def test_credentials_map_to_the_peers_permissions(start_pacs: StartPacs) -> None:
    pacs = await start_pacs(web={"port": 0, "users": USERS}, peers=PEERS)
    url = _url(pacs)
    ds = make_instance()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/studies") as response:
            assert response.status == 401
            challenges = response.headers.getall("WWW-Authenticate")
            assert any(c.startswith("Basic") for c in challenges)
        wrong = {"Authorization": aiohttp.encode_basic_auth("modality", "not the password")}
        async with session.get(f"{url}/studies", headers=wrong) as response:
            assert response.status == 401
        async with session.get(f"{url}/studies", headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401
        modality = {"Authorization": aiohttp.encode_basic_auth("modality", PASSWORD)}
        async with session.get(f"{url}/studies", headers=modality) as response:
            assert response.status == 403  # MODALITY may store, not find
        remote = {"Authorization": "Bearer token-of-remote"}
        async with session.get(f"{url}/studies", headers=remote) as response:
            assert response.status == 403  # REMOTE may find, from its hosts only
    viewer = {"Authorization": f"Bearer {TOKEN}"}
    status, _ = await _stow(f"{url}/studies", [_part10(ds)], **viewer)
    assert status == 403  # VIEWER may find, not store
    status, _ = await _stow(f"{url}/studies", [_part10(ds)], **modality)
    assert status == 200
    client = DICOMwebClient(url, headers=viewer)
    studies = await asyncio.to_thread(client.search_for_studies)
    assert [_value(s, "0020000D") for s in studies] == [ds.StudyInstanceUID]


async def test_without_users_it_listens_on_loopback_only(start_pacs: StartPacs) -> None:
    pacs = await start_pacs(web={"port": 0, "host": "0.0.0.0"})
    assert pacs.app is not None and pacs.app.web is not None
    assert pacs.app.web.address[0] == "127.0.0.1"


async def test_cors_and_gzip(start_pacs: StartPacs) -> None:
    origin = "https://viewer.example.org"
    pacs = await start_pacs(web={"port": 0, "cors_origins": [origin]})
    client = DICOMwebClient(_url(pacs))
    await asyncio.to_thread(client.store_instances, [make_instance() for _ in range(3)])
    url = f"{_url(pacs)}/studies"
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        preflight = {"Origin": origin, "Access-Control-Request-Method": "GET"}
        async with session.options(url, headers=preflight) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
        headers = {"Origin": origin, "Accept-Encoding": "gzip"}
        async with session.get(url, headers=headers) as response:
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert response.headers["Content-Encoding"] == "gzip"
        async with session.get(url, headers={"Origin": "https://elsewhere.example"}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers


async def test_https_with_the_tls_certificate(start_pacs: StartPacs, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    tls = {
        "port": 0,
        "certificate": pki.server.certificate,
        "private_key": pki.server.private_key,
        "client_certificates": "none",
    }
    pacs = await start_pacs(tls=tls, web={"port": 0, "tls": True})
    assert _url(pacs).startswith("https://127.0.0.1:")
    trusting = ssl.create_default_context(cafile=pki.ca)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{_url(pacs)}/studies", ssl=trusting) as response:
            assert response.status == 200
            assert await response.json(content_type="application/dicom+json") == []
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"{_url(pacs)}/studies")  # the CA is not the system's


async def test_a_web_port_in_use_stops_the_start_naming_the_key(start_pacs: StartPacs) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=r"\[web\] port: .* already in use"):
            await start_pacs(web={"port": port, "host": "127.0.0.1"})
