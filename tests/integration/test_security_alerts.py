"""Security Alerts in the audit trail: every refusal on permission or TLS grounds is recorded
with who was refused, from where, and why (PS3.15 A.5.3.11)."""

import asyncio
from pathlib import Path
from typing import Any

from benchmarks.certificates import Pki
from pacs.audit.events import EventKind
from pacs.net.contexts import VERIFICATION
from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import StartPacs, rejection
from tests.integration.test_audit import _events, _eventually, _of
from tests.integration.test_permissions import READ_CONTEXTS, _move_as
from tests.integration.test_tls import _echoscu, _start, pki  # noqa: F401 (fixture)

PERMISSION_DENIED = "Use of Restricted Function"
NODE_AUTHENTICATION = "Node Authentication"


def _alerts(path: Path) -> list[dict[str, Any]]:
    return _of(_events(path), EventKind.SECURITY_ALERT)


def _who(alert: dict[str, Any]) -> tuple[str, str]:
    (peer,) = [p for p in alert["participants"] if p["requestor"]]
    return peer["ae_title"], peer["host"]


async def test_refusals_on_permission_grounds_are_security_alerts(
    start_pacs: StartPacs, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    peers = [
        {"ae_title": "WS", "host": "127.0.0.1", "port": 1, "move_destinations": ["WS"]},
        {"ae_title": "OTHER", "host": "127.0.0.1", "port": 1},
        {"ae_title": "SHUT", "host": "127.0.0.1", "port": 1, "allow": []},
    ]
    pacs = await start_pacs(
        access={"unknown_peers": ["echo", "store"]}, peers=peers, audit={"file": audit}
    )

    results = await asyncio.to_thread(
        scu.context_results, pacs, "STRANGER", [VERIFICATION, *READ_CONTEXTS]
    )
    shut_out = await rejection(pacs, "SHUT")
    moved = await asyncio.to_thread(_move_as, pacs, "WS", "OTHER", "1.2.3")
    assert await asyncio.to_thread(scu.store, pacs, [make_instance()]) == [0]
    assert pacs.app is not None
    await pacs.app.stop(grace=2)

    assert {results[uid] for uid in READ_CONTEXTS} == {0x01}
    assert shut_out is not None
    assert moved[0] == 0x0124
    alerts = _alerts(audit)
    assert [_who(a) for a in alerts] == [
        ("STRANGER", "127.0.0.1"),
        ("SHUT", "127.0.0.1"),
        ("WS", "127.0.0.1"),
    ]
    assert {a["type"] for a in alerts} == {PERMISSION_DENIED}
    assert "may not commit, find, get, move" in alerts[0]["description"]
    assert "is allowed nothing" in alerts[1]["description"]
    assert "WS may not move to OTHER" in alerts[2]["description"]


async def test_refused_tls_connections_are_security_alerts(
    start_pacs: StartPacs,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    audit = tmp_path / "audit.jsonl"
    pacs = await _start(start_pacs, pki, audit={"file": audit})

    code, output = await _echoscu(pacs.tls)  # plain DICOM on the TLS port
    assert code != 0, output
    await _eventually(lambda: bool(_alerts(audit)))
    assert pacs.plain.app is not None
    await pacs.plain.app.stop(grace=2)

    (alert,) = _alerts(audit)
    assert alert["type"] == NODE_AUTHENTICATION
    assert _who(alert) == ("", "127.0.0.1")
    assert "not a TLS handshake" in alert["description"]
