"""DICOM TLS against the real server: DCMTK and pynetdicom as TLS peers, DCMTK's storescp
as a TLS C-MOVE destination, and bad input refused, logged, while others are served."""

import asyncio
import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, build_role, evt
from pynetdicom.dsutils import encode

from benchmarks.certificates import Credential, Pki, make_pki
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration import test_commitment_scp as commitment
from tests.integration.conftest import (
    PacsAddress,
    StartPacs,
    dcmtk_tool,
    run_dcmtk,
    write_config,
)
from tests.integration.serve_process import run_pacs

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
SUCCESS = 0x0000
HANDSHAKE_TIMEOUT = 1.0
DESTINATION_SUBJECT = "O=pacs tests, CN=destination"  # in certificate order: order is free


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass(frozen=True, slots=True)
class TlsPacs:
    plain: PacsAddress
    tls: PacsAddress


async def _start(start_pacs: StartPacs, pki: Pki, **sections: Any) -> TlsPacs:
    tls = {
        "port": 0,
        "certificate": pki.server.certificate,
        "private_key": pki.server.private_key,
        "ca_certificates": pki.ca,
        "handshake_timeout": HANDSHAKE_TIMEOUT,
        **sections.pop("tls", {}),
    }
    plain = await start_pacs(tls=tls, **sections)
    assert plain.app is not None
    address = plain.app.server.tls_address
    assert address is not None
    return TlsPacs(plain, PacsAddress(address[0], address[1], plain.ae_title, plain.app))


class LogWatch(logging.Handler):
    """Collects pacs's log lines and wakes whoever waits for one that contains some text."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[int, str]] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))
        self._changed.set()

    async def wait_for(self, *parts: str) -> tuple[int, str]:
        """The first line containing every part; fails when none comes within 10 s."""
        try:
            async with asyncio.timeout(10):
                while True:
                    for level, line in self.lines:
                        if all(part in line for part in parts):
                            return level, line
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"no log line with {parts}: {self.lines}") from None


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("pacs")
    logger.addHandler(watch)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield watch
    logger.removeHandler(watch)
    logger.setLevel(previous)


def _tls_args(pki: Pki, credential: Credential) -> list[str]:
    return ["+tls", str(credential.private_key), str(credential.certificate), "+cf", str(pki.ca)]


async def _echoscu(address: PacsAddress, *options: str) -> tuple[int, str]:
    return await run_dcmtk(
        "echoscu", "-aet", "WORKSTATION", "-aec", "PACS", *options, address.host, str(address.port)
    )


def _client_context(pki: Pki, credential: Credential) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca)
    context.load_cert_chain(credential.certificate, credential.private_key)
    return context


async def test_dcmtk_echo_store_and_find_over_tls(
    start_pacs: StartPacs, pki: Pki, tmp_path: Path, logs: LogWatch
) -> None:
    pacs = await _start(start_pacs, pki)
    ct = make_instance(PatientID="TLS-1")
    path = tmp_path / "ct.dcm"
    ct.save_as(path, enforce_file_format=True)
    credentials = _tls_args(pki, pki.client)

    echo = await _echoscu(pacs.tls, *credentials)
    store = await run_dcmtk(
        "storescu",
        "-aet",
        "WORKSTATION",
        *credentials,
        pacs.tls.host,
        str(pacs.tls.port),
        str(path),
    )
    find = await run_dcmtk(
        "findscu", "-v", "-S", "-aet", "WORKSTATION", *credentials,
        "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=TLS-1", "-k", "StudyInstanceUID",
        pacs.tls.host, str(pacs.tls.port),
    )  # fmt: skip

    assert echo[0] == 0, echo[1]
    assert store[0] == 0, store[1]
    assert find[0] == 0, find[1]
    assert ct.StudyInstanceUID in find[1]
    _, line = await logs.wait_for("association from WORKSTATION@", "accepted")
    assert "TLSv1.3 as CN=workstation,O=pacs tests" in line


async def test_a_data_set_of_many_tls_records_is_stored_byte_identical(
    start_pacs: StartPacs, pki: Pki, tmp_path: Path
) -> None:
    pacs = await _start(start_pacs, pki)
    ct = make_instance(PatientID="TLS-LARGE")
    ct.Rows = ct.Columns = 512
    ct.NumberOfFrames = 12
    ct.PixelData = bytes(range(256)) * (512 * 512 * 2 * 12 // 256)  # 6 MiB
    path = tmp_path / "large.dcm"
    ct.save_as(path, enforce_file_format=True)

    code, output = await run_dcmtk(
        "storescu", "-aet", "WORKSTATION", *_tls_args(pki, pki.client),
        pacs.tls.host, str(pacs.tls.port), str(path),
    )  # fmt: skip

    assert code == 0, output
    assert pacs.plain.app is not None
    row = await pacs.plain.app.index.get_instance(ct.SOPInstanceUID)
    assert row is not None
    data_set = encode(ct, False, True)  # as saved and sent: Explicit VR Little Endian
    assert data_set is not None and path.read_bytes().endswith(data_set)
    with pacs.plain.app.store.open(row.blob_sha256) as blob:
        assert blob.read().endswith(data_set)


async def test_plain_listener_can_be_switched_off(start_pacs: StartPacs, pki: Pki) -> None:
    pacs = await _start(start_pacs, pki, tls={"plain_listener": False})

    assert pacs.plain.port == pacs.tls.port  # the only listener is the TLS one
    code, output = await _echoscu(pacs.tls, *_tls_args(pki, pki.client))
    assert code == 0, output


async def _storescp_tls(
    pki: Pki, out: Path, credential: Credential | None = None
) -> tuple[asyncio.subprocess.Process, int]:
    """DCMTK's storescp on a free port with TLS, requiring and verifying our certificate."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = await asyncio.create_subprocess_exec(
        dcmtk_tool("storescp"), "-aet", "STORESCP", "-od", str(out),
        *_tls_args(pki, credential or pki.destination), str(port),
        env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    # storescp says nothing when it is ready: wait until its port takes connections.
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return process, port
    process.terminate()
    raise AssertionError("storescp did not start listening")


def _get(pacs: PacsAddress, context: ssl.SSLContext, study: str) -> tuple[int, list[str]]:
    ae = AE(ae_title="WORKSTATION")
    ae.add_requested_context(STUDY_ROOT_GET)
    ae.add_requested_context(CT)
    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(str(event.dataset.SOPInstanceUID))
        return 0

    assoc = ae.associate(
        pacs.host, pacs.port, ae_title=pacs.ae_title, tls_args=(context, "localhost"),
        ext_neg=[build_role(CT, scp_role=True)], evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )  # fmt: skip
    assert assoc.is_established
    try:
        responses = list(assoc.send_c_get(_study(study), STUDY_ROOT_GET))
    finally:
        assoc.release()
    return int(responses[-1][0].Status), received


def _move(pacs: PacsAddress, context: ssl.SSLContext, study: str, destination: str) -> int:
    ae = AE(ae_title="WORKSTATION")
    ae.add_requested_context(STUDY_ROOT_MOVE)
    assoc = ae.associate(
        pacs.host, pacs.port, ae_title=pacs.ae_title, tls_args=(context, "localhost")
    )
    assert assoc.is_established
    try:
        responses = list(assoc.send_c_move(_study(study), destination, STUDY_ROOT_MOVE))
    finally:
        assoc.release()
    return int(responses[-1][0].Status)


def _study(uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = uid
    return ds


async def test_get_and_move_over_tls_to_a_tls_storescp(
    start_pacs: StartPacs, pki: Pki, tmp_path: Path, logs: LogWatch
) -> None:
    out = tmp_path / "storescp"
    out.mkdir()
    storescp, port = await _storescp_tls(pki, out)
    stranger, stranger_port = await _storescp_tls(pki, out, pki.untrusted)
    try:
        destination = {"host": "127.0.0.1", "port": port, "tls": True}
        pacs = await _start(
            start_pacs,
            pki,
            peers=[
                {"ae_title": "STORESCP", **destination},
                {"ae_title": "BOUND", **destination, "certificate_subject": DESTINATION_SUBJECT},
                {"ae_title": "IMPOSTOR", **destination, "certificate_subject": "CN=someone else"},
                {"ae_title": "PLAINTEXT", "host": "127.0.0.1", "port": port},
                {"ae_title": "STRANGER", **destination, "port": stranger_port},
            ],
        )  # fmt: skip
        study = generate_uid()
        datasets = [make_instance(StudyInstanceUID=study, PatientID="TLS-2") for _ in range(3)]
        assert await asyncio.to_thread(scu.store, pacs.plain, datasets) == [SUCCESS] * 3
        context = _client_context(pki, pki.client)

        got = await asyncio.to_thread(_get, pacs.tls, context, study)
        moved = await asyncio.to_thread(_move, pacs.tls, context, study, "STORESCP")
        bound = await asyncio.to_thread(_move, pacs.tls, context, study, "BOUND")
        impostor = await asyncio.to_thread(_move, pacs.tls, context, study, "IMPOSTOR")
        plaintext = await asyncio.to_thread(_move, pacs.tls, context, study, "PLAINTEXT")
        untrusted = await asyncio.to_thread(_move, pacs.tls, context, study, "STRANGER")
    finally:
        for process in (storescp, stranger):
            process.terminate()
            await process.wait()

    assert got == (SUCCESS, [ds.SOPInstanceUID for ds in datasets])
    assert (moved, bound) == (SUCCESS, SUCCESS)
    assert len(list(out.iterdir())) == 3  # the same three instances, twice
    assert impostor != SUCCESS
    level, _ = await logs.wait_for(
        "TLS connection with IMPOSTOR@127.0.0.1",
        "certificate subject 'CN=destination,O=pacs tests'",
    )
    assert level == logging.WARNING
    assert plaintext != SUCCESS  # storescp expects TLS; pacs spoke plain DICOM to it
    assert untrusted != SUCCESS
    level, _ = await logs.wait_for(
        "TLS connection with STRANGER@127.0.0.1", "unable to get local issuer certificate"
    )
    assert level == logging.WARNING


async def _stalled(pacs: PacsAddress) -> None:
    """A peer that connects to the TLS port and sends nothing; returns once pacs hangs up."""
    reader, writer = await asyncio.open_connection(pacs.host, pacs.port)
    try:
        assert await reader.read() == b""
    finally:
        writer.close()


async def _openssl_anonymous(pacs: PacsAddress) -> tuple[int, str]:
    """OpenSSL offering only anonymous (aNULL) TLS 1.2 suites."""
    process = await asyncio.create_subprocess_exec(
        "openssl", "s_client", "-connect", f"{pacs.host}:{pacs.port}", "-tls1_2",
        "-cipher", "aNULL:@SECLEVEL=0",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


BAD_INPUT = {
    "plaintext DICOM on the TLS port": ("tls", [], "not a TLS handshake"),
    "a TLS ClientHello on the plain port": ("plain", ["client"], "a TLS ClientHello on the plain"),
    "an untrusted client certificate": ("tls", ["untrusted"], "unable to get local issuer"),
    "an expired client certificate": ("tls", ["expired"], "certificate has expired"),
    "no client certificate (DCMTK +tla)": ("tls", ["+tla"], "no client certificate presented"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
async def test_bad_input_is_refused_and_logged_while_others_are_served(
    start_pacs: StartPacs, pki: Pki, logs: LogWatch, case: str
) -> None:
    pacs = await _start(start_pacs, pki)
    port, client, reason = BAD_INPUT[case]
    target = pacs.tls if port == "tls" else pacs.plain
    options = ["+tla", "-ic"] if client == ["+tla"] else []
    if client and client != ["+tla"]:
        options = _tls_args(pki, getattr(pki, client[0]))

    bad, good = await asyncio.gather(
        _echoscu(target, *options), _echoscu(pacs.tls, *_tls_args(pki, pki.client))
    )

    assert bad[0] != 0, bad[1]
    assert good[0] == 0, good[1]
    level, _ = await logs.wait_for("TLS connection with 127.0.0.1:", reason)
    assert level == logging.WARNING


async def test_anonymous_cipher_suites_are_refused(
    start_pacs: StartPacs, pki: Pki, logs: LogWatch
) -> None:
    # Even when no client certificate is asked for, the server's suites all authenticate it.
    pacs = await _start(start_pacs, pki, tls={"client_certificates": "none"})

    (code, output), good = await asyncio.gather(
        _openssl_anonymous(pacs.tls), _echoscu(pacs.tls, "+tla", "+cf", str(pki.ca))
    )

    assert code != 0, output
    assert good[0] == 0, good[1]  # no client certificate is fine here; anonymity of ours is not
    level, _ = await logs.wait_for("TLS connection with 127.0.0.1:", "no shared cipher suite")
    assert level == logging.WARNING


async def test_a_stalled_handshake_is_cut_off_while_others_are_served(
    start_pacs: StartPacs, pki: Pki, logs: LogWatch
) -> None:
    pacs = await _start(start_pacs, pki)
    stalled = asyncio.create_task(_stalled(pacs.tls))

    code, output = await _echoscu(pacs.tls, *_tls_args(pki, pki.client))
    await stalled  # pacs closed the silent connection

    assert code == 0, output
    level, _ = await logs.wait_for("TLS connection with 127.0.0.1:", "handshake not completed")
    assert level == logging.WARNING


async def test_a_peer_bound_to_its_certificate_subject_must_present_it(
    start_pacs: StartPacs, pki: Pki, logs: LogWatch
) -> None:
    subject = "CN=workstation,O=pacs tests"
    peer = {"ae_title": "WORKSTATION", "host": "127.0.0.1", "port": 1}
    pacs = await _start(start_pacs, pki, peers=[{**peer, "certificate_subject": subject}])

    bound, plain, other = await asyncio.gather(
        _echoscu(pacs.tls, *_tls_args(pki, pki.client)),
        _echoscu(pacs.plain),
        _echoscu(pacs.tls, *_tls_args(pki, pki.destination)),
    )

    assert bound[0] == 0, bound[1]
    assert "Calling AE Title Not Recognized" in plain[1]
    assert "Calling AE Title Not Recognized" in other[1]
    bound_to = f"calling AE 'WORKSTATION' is bound to {subject!r}, but presented"
    level, _ = await logs.wait_for(bound_to, "no verified certificate")
    assert level == logging.WARNING
    await logs.wait_for(bound_to, "certificate subject 'CN=destination,O=pacs tests'")


async def test_a_commitment_report_reaches_a_tls_peer_on_a_new_association(
    start_pacs: StartPacs, pki: Pki
) -> None:
    reports = commitment.Reports()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.destination.certificate, pki.destination.private_key)
    context.load_verify_locations(pki.ca)
    context.verify_mode = ssl.CERT_REQUIRED  # pacs must present its certificate
    ae = AE(ae_title="MODALITY")
    ae.add_supported_context(commitment.COMMITMENT, scu_role=True, scp_role=True)
    handlers: list[Any] = [
        (evt.EVT_N_EVENT_REPORT, lambda event: reports.record(event, "new association"))
    ]
    modality = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=handlers, ssl_context=context
    )
    assert modality is not None
    try:
        port = modality.server_address[1]
        peer = {"ae_title": "MODALITY", "host": "127.0.0.1", "port": port, "tls": True}
        pacs = await _start(start_pacs, pki, peers=[peer], commitment=commitment.FAST_RETRY)
        datasets = [make_instance() for _ in range(2)]
        assert await asyncio.to_thread(scu.store, pacs.plain, datasets) == [SUCCESS] * 2
        references = [(str(ds.SOPClassUID), str(ds.SOPInstanceUID)) for ds in datasets]
        info = commitment.action_information(generate_uid(), references)

        status = await asyncio.to_thread(commitment.request_commitment, pacs.plain, info, reports)
        assert status.Status == SUCCESS
        assert await asyncio.to_thread(reports.arrived.wait, 10)
    finally:
        modality.shutdown()

    [(event_type, report, where)] = reports.events
    assert (event_type, where) == (1, "new association")
    assert {str(item.ReferencedSOPInstanceUID) for item in report.ReferencedSOPSequence} == {
        ds.SOPInstanceUID for ds in datasets
    }


async def test_a_key_that_is_not_the_certificates_stops_start_up_naming_it(
    tmp_path: Path, pki: Pki
) -> None:
    tls = {"port": 0, "certificate": pki.server.certificate, "ca_certificates": pki.ca}
    config = write_config(tmp_path, tls={**tls, "private_key": pki.client.private_key})

    code, output = await run_pacs("serve", "--config", str(config))

    assert code == 3, output
    assert "Traceback" not in output
    [line] = output.strip().splitlines()
    assert line == (
        f"pacs: [tls] private_key: {pki.client.private_key} is not the key of "
        f"{pki.server.certificate}"
    )


async def test_a_tls_port_in_use_names_tls_port(tmp_path: Path, pki: Pki) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tls = {"port": port, "certificate": pki.server.certificate, "ca_certificates": pki.ca}
        config = write_config(tmp_path, tls={**tls, "private_key": pki.server.private_key})
        assert (await run_pacs("db", "upgrade", "--config", str(config)))[0] == 0

        code, output = await run_pacs("serve", "--config", str(config))

    assert code == 3, output
    in_use = f"127.0.0.1:{port} is already in use by another program"
    assert output.strip() == f"pacs: [tls] port: {in_use}"


async def test_optional_client_certificates_admit_none_but_verify_one_that_is_sent(
    start_pacs: StartPacs, pki: Pki, logs: LogWatch
) -> None:
    pacs = await _start(start_pacs, pki, tls={"client_certificates": "optional"})

    anonymous, untrusted = await asyncio.gather(
        _echoscu(pacs.tls, "+tla", "+cf", str(pki.ca)),
        _echoscu(pacs.tls, *_tls_args(pki, pki.untrusted)),
    )

    assert anonymous[0] == 0, anonymous[1]
    _, line = await logs.wait_for("association from WORKSTATION@", "accepted")
    assert line.endswith(", TLSv1.3")  # no certificate, so no subject
    assert untrusted[0] != 0, untrusted[1]
    await logs.wait_for("TLS connection with 127.0.0.1:", "unable to get local issuer")
