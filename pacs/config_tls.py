"""Settings of DICOM TLS: the [tls] table and the checks that tie it to [[peers]]."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pacs.config_values import Invalid, boolean, one_of, text


class ClientCertificates(StrEnum):
    """Whether the TLS listener asks calling peers for a certificate (verified when sent)."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The DICOM TLS listener (PS3.15 B.9) and the credentials of outbound TLS associations."""

    port: int
    certificate: Path
    private_key: Path
    ca_certificates: Path | None = None
    client_certificates: ClientCertificates = ClientCertificates.REQUIRED
    handshake_timeout: float = 10.0
    plain_listener: bool = True


class TlsPeer(Protocol):
    """What the checks read of a [[peers]] entry."""

    @property
    def tls(self) -> bool: ...

    @property
    def certificate_subject(self) -> str | None: ...


def path(value: object) -> Path:
    """A file or directory setting, absolute against the start directory."""
    return Path(text(value)).absolute()


def tls_keys(
    port: Callable[[object], int], seconds: Callable[[object], float]
) -> Mapping[str, Callable[[object], object]]:
    """The parsers of [tls]'s keys (the port and seconds parsers are config's own)."""
    return {
        "port": port,
        "certificate": path,
        "private_key": path,
        "ca_certificates": path,
        "client_certificates": one_of(list(ClientCertificates)),
        "handshake_timeout": seconds,
        "plain_listener": boolean,
    }


TLS_REQUIRED = ("port", "certificate", "private_key")


def check_tls(tls: TlsSettings | None, peers: Sequence[TlsPeer], server_port: int) -> None:
    """Check that what the listener and the TLS peers need is configured; Invalid says what."""
    tls_peer = next((n for n, peer in enumerate(peers, 1) if peer.tls), 0)
    bound = next((n for n, peer in enumerate(peers, 1) if peer.certificate_subject), 0)
    if tls is None:
        if tls_peer:
            raise Invalid(f"[[peers]][{tls_peer}] tls: needs a [tls] table (our certificate)")
        if bound:
            raise Invalid(f"[[peers]][{bound}] certificate_subject: needs a [tls] table")
        return
    if tls.plain_listener and tls.port == server_port != 0:
        raise Invalid(f"[tls] port: {tls.port} is also [server] port; TLS needs its own port")
    if bound and tls.client_certificates == ClientCertificates.NONE:
        raise Invalid(
            f"[[peers]][{bound}] certificate_subject: needs [tls] client_certificates "
            '"required" or "optional", not "none"'
        )
    if tls.ca_certificates is None:
        if tls.client_certificates != ClientCertificates.NONE:
            raise Invalid(
                f"[tls] ca_certificates: needed to verify client certificates "
                f"(client_certificates = {tls.client_certificates.value!r})"
            )
        if tls_peer:
            raise Invalid(
                f"[tls] ca_certificates: needed to verify [[peers]][{tls_peer}]'s certificate"
            )
