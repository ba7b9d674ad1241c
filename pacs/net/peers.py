"""The peers pacs opens associations to (C-MOVE destinations, Storage Commitment
requesters) and the requestor it opens them as."""

import ssl
from dataclasses import dataclass

from pacs.audit.auditor import Auditor
from pacs.net.timeouts import Timeouts


@dataclass(frozen=True, slots=True)
class Destination:
    host: str
    port: int
    tls: bool = False
    certificate_subject: str | None = None  # required of its certificate over TLS


@dataclass(frozen=True, slots=True)
class Requestor:
    """How pacs opens associations of its own: its AE title, limits and timeouts."""

    ae_title: str
    max_pdu_length: int
    timeouts: Timeouts
    tls: ssl.SSLContext | None = None  # for destinations marked `tls`
    auditor: Auditor | None = None  # where refused TLS connections are reported

    def tls_for(self, destination: Destination) -> ssl.SSLContext | None:
        """The TLS context for associations to `destination`; None: plain TCP."""
        return self.tls if destination.tls else None
