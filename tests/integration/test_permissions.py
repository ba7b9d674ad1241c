"""Permissions per peer against real associations: pynetdicom and DCMTK as the calling AEs."""

import asyncio
import logging

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage
from pynetdicom import build_role

from pacs.net.contexts import VERIFICATION
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, StartPacs, rejection, run_dcmtk

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
COMMITMENT = "1.2.840.10008.1.20.1"
ACCEPTED, USER_REJECTION = 0x00, 0x01
SUCCESS, NOT_AUTHORIZED, UNKNOWN_DESTINATION = 0x0000, 0x0124, 0xA801
DEFAULT_UNKNOWN = {"unknown_peers": ["echo", "store"]}  # the default, set over the fixture's
READ_CONTEXTS = [STUDY_FIND, STUDY_MOVE, STUDY_GET, COMMITMENT]


@pytest.fixture
def refusals(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="pacs")
    return caplog


def _refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "pacs.net.permissions" and r.levelno == logging.WARNING
    ]


def _store_as(address: PacsAddress, ae_title: str, ds: Dataset) -> int:
    assoc = scu.associate(address, [CTImageStorage], ae_title=ae_title)
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


async def test_an_unknown_ae_may_echo_and_store_but_not_read(
    start_pacs: StartPacs, refusals: pytest.LogCaptureFixture
) -> None:
    pacs = await start_pacs(access=DEFAULT_UNKNOWN)
    ct = make_instance(PatientID="P1")

    assert await asyncio.to_thread(scu.echo, pacs, ae_title="STRANGER") == SUCCESS
    assert await asyncio.to_thread(_store_as, pacs, "STRANGER", ct) == SUCCESS
    results = await asyncio.to_thread(
        scu.context_results, pacs, "STRANGER", [VERIFICATION, *READ_CONTEXTS]
    )

    assert results == {
        VERIFICATION: ACCEPTED,
        **{uid: USER_REJECTION for uid in READ_CONTEXTS},
    }
    [line] = _refusal_lines(refusals)
    assert line.startswith("permission refused: STRANGER@127.0.0.1:")
    assert "may not commit, find, get, move: 4 presentation contexts rejected" in line


async def test_dcmtk_findscu_as_an_unknown_ae_is_refused_and_echoscu_is_served(
    start_pacs: StartPacs,
) -> None:
    pacs = await start_pacs(access=DEFAULT_UNKNOWN)
    where = [pacs.host, str(pacs.port)]
    called = ["-aet", "STRANGER", "-aec", pacs.ae_title]

    echo_code, _ = await run_dcmtk("echoscu", *called, *where)
    find_code, output = await run_dcmtk(
        "findscu", "-S", "-k", "QueryRetrieveLevel=STUDY", *called, *where
    )

    assert echo_code == 0
    assert find_code != 0
    assert "No Acceptable Presentation Contexts" in output


async def test_a_peer_allowed_find_may_find_but_not_get(start_pacs: StartPacs) -> None:
    peer = {"ae_title": "READER", "host": "127.0.0.1", "port": 1, "allow": ["find"]}
    pacs = await start_pacs(access=DEFAULT_UNKNOWN, peers=[peer])
    get_storage = (CTImageStorage, build_role(CTImageStorage, scp_role=True))

    results = await asyncio.to_thread(
        scu.context_results, pacs, "READER", [STUDY_FIND, STUDY_GET, get_storage, VERIFICATION]
    )
    code, _ = await asyncio.to_thread(
        _find_as, pacs, "READER", QueryRetrieveLevel="STUDY", StudyInstanceUID=""
    )

    assert results == {
        STUDY_FIND: ACCEPTED,
        STUDY_GET: USER_REJECTION,
        CTImageStorage: USER_REJECTION,  # neither storing nor receiving C-GET sub-operations
        VERIFICATION: USER_REJECTION,
    }
    assert code == SUCCESS


def _find_as(address: PacsAddress, ae_title: str, **keys: str) -> tuple[int, int]:
    """C-FIND as `ae_title`; (final status, number of matches)."""
    identifier = Dataset()
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    assoc = scu.associate(address, [STUDY_FIND], ae_title=ae_title)
    assert assoc.is_established
    try:
        statuses = [int(s.Status) for s, _ in assoc.send_c_find(identifier, STUDY_FIND)]
    finally:
        assoc.release()
    return statuses[-1], len(statuses) - 1


async def test_a_peer_allowed_get_receives_but_may_not_store(start_pacs: StartPacs) -> None:
    peer = {"ae_title": "GETTER", "host": "127.0.0.1", "port": 1, "allow": ["get"]}
    pacs = await start_pacs(access=DEFAULT_UNKNOWN, peers=[peer])
    both = (CTImageStorage, build_role(CTImageStorage, scu_role=True, scp_role=True))
    assoc = await asyncio.to_thread(scu.associate, pacs, [STUDY_GET, both], ae_title="GETTER")
    try:
        cx = next(c for c in assoc.accepted_contexts if c.abstract_syntax == CTImageStorage)
        # GETTER's roles: it may receive C-GET sub-operations (SCP), not store (SCU).
        assert (cx.as_scu, cx.as_scp) == (False, True)
    finally:
        await asyncio.to_thread(assoc.release)

    results = await asyncio.to_thread(
        scu.context_results, pacs, "GETTER", [STUDY_GET, CTImageStorage]
    )
    assert results == {STUDY_GET: ACCEPTED, CTImageStorage: USER_REJECTION}  # default role: store


async def test_a_peer_from_outside_its_hosts_is_rejected_as_not_recognized(
    start_pacs: StartPacs, refusals: pytest.LogCaptureFixture
) -> None:
    peers = [
        {"ae_title": "FAR", "host": "127.0.0.1", "port": 1, "hosts": ["10.0.0.0/8"]},
        {"ae_title": "NEAR", "host": "127.0.0.1", "port": 1, "hosts": ["127.0.0.0/8"]},
    ]
    pacs = await start_pacs(access=DEFAULT_UNKNOWN, peers=peers)

    # Rejected-permanent, service-user, calling AE title not recognized (PS3.8 9.3.4).
    assert await rejection(pacs, "FAR") == (0x01, 0x01, 0x03)
    assert await rejection(pacs, "NEAR") is None
    [line] = _refusal_lines(refusals)
    assert line.startswith("permission refused: FAR@127.0.0.1:")
    assert "association rejected: connects from a host not in its hosts" in line


async def test_unknown_aes_allowed_nothing_are_rejected_and_dcmtk_says_why(
    start_pacs: StartPacs, refusals: pytest.LogCaptureFixture
) -> None:
    peer = {"ae_title": "KNOWN", "host": "127.0.0.1", "port": 1}
    pacs = await start_pacs(access={"unknown_peers": []}, peers=[peer])

    code, output = await run_dcmtk(
        "echoscu", "-aet", "STRANGER", "-aec", pacs.ae_title, pacs.host, str(pacs.port)
    )

    assert await rejection(pacs, "STRANGER") == (0x01, 0x01, 0x03)
    assert code != 0
    assert "Calling AE Title Not Recognized" in output
    assert "association rejected: is allowed nothing" in _refusal_lines(refusals)[0]
    assert await asyncio.to_thread(scu.echo, pacs, ae_title="KNOWN") == SUCCESS


def _move_as(
    address: PacsAddress, ae_title: str, destination: str, study_uid: str
) -> tuple[int, str]:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_uid
    assoc = scu.associate(address, [STUDY_MOVE], ae_title=ae_title)
    assert assoc.is_established
    try:
        responses = [r for r, _ in assoc.send_c_move(identifier, destination, STUDY_MOVE)]
    finally:
        assoc.release()
    return int(responses[-1].Status), str(responses[-1].get("ErrorComment", ""))


async def test_move_to_a_destination_the_requester_may_not_use_is_not_authorized(
    start_pacs: StartPacs, refusals: pytest.LogCaptureFixture
) -> None:
    peers = [
        {"ae_title": "WS", "host": "127.0.0.1", "port": 1, "move_destinations": ["WS"]},
        {"ae_title": "OTHER", "host": "127.0.0.1", "port": 1},
    ]
    pacs = await start_pacs(access=DEFAULT_UNKNOWN, peers=peers)

    refused = await asyncio.to_thread(_move_as, pacs, "WS", "OTHER", "1.2.3")
    unknown = await asyncio.to_thread(_move_as, pacs, "WS", "NOWHERE", "1.2.3")

    assert refused == (NOT_AUTHORIZED, "WS may not move to OTHER")
    assert unknown == (UNKNOWN_DESTINATION, "'NOWHERE' is not a configured peer")
    [line] = _refusal_lines(refusals)
    assert line.startswith("permission refused: WS@127.0.0.1:")
    assert line.endswith("C-MOVE refused: WS may not move to OTHER")


async def test_peers_without_allow_keep_every_permission_under_the_default_access(
    start_pacs: StartPacs,
) -> None:
    peer = {"ae_title": "OLDPEER", "host": "127.0.0.1", "port": 1}
    pacs = await start_pacs(access=DEFAULT_UNKNOWN, peers=[peer])
    get_storage = (CTImageStorage, build_role(CTImageStorage, scu_role=True, scp_role=True))
    ct = make_instance(PatientID="P2")

    results = await asyncio.to_thread(
        scu.context_results, pacs, "OLDPEER", [VERIFICATION, *READ_CONTEXTS, get_storage]
    )
    stored = await asyncio.to_thread(_store_as, pacs, "OLDPEER", ct)
    found = await asyncio.to_thread(
        _find_as, pacs, "OLDPEER", QueryRetrieveLevel="STUDY", PatientID="P2"
    )

    assert set(results.values()) == {ACCEPTED}
    assert (stored, found) == (SUCCESS, (SUCCESS, 1))
