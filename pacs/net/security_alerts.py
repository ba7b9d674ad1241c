"""Security Alerts from the edge: where pacs refuses an association, a TLS connection or an
operation, the audit trail records who was refused and why (PS3.15 A.5.3.11)."""

from pacs.audit.auditor import Alert, Auditor
from pacs.audit.events import Node

__all__ = ["Alert", "alert", "node_at"]


def node_at(address: str, ae_title: str = "") -> Node:
    """The peer at `address` ("host:port" or "AE@host:port", as the edge's log lines write it)."""
    title, _, where = address.rpartition("@")
    return Node(ae_title.strip() or title, where.rpartition(":")[0] or where)


def alert(auditor: Auditor | None, peer: Node, kind: Alert, why: str) -> None:
    """Raise a Security Alert when the app keeps an audit trail (None: it does not)."""
    if auditor is not None:
        auditor.security_alert(peer, kind, why)
