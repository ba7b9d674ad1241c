"""The audit trail's view of an association: the peer's AE title, address and certificate."""

from pacs.audit.events import Node
from pacs.net.association import Association


def peer_node(assoc: Association) -> Node:
    """The remote AE of `assoc`, with its TLS certificate's subject when it presented one."""
    agreement = assoc.agreement
    title = agreement.called_ae_title if assoc.is_requestor else agreement.calling_ae_title
    return Node(title, assoc.peer_host, assoc.peer_certificate_subject)
