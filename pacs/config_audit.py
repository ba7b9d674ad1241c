"""Settings of the audit trail: the [audit] table (a JSON-lines file, syslog spooled to disk)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pacs.config_tls import path
from pacs.config_values import Invalid, show, text


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The audit trail: a JSON-lines file, and syslog (tcp:// or tls://) spooled to disk."""

    file: Path | None = None
    syslog: str | None = None
    spool: Path = field(default_factory=lambda: Path("data/audit-spool").absolute())
    ca_certificates: Path | None = None
    certificate: Path | None = None
    private_key: Path | None = None

    @property
    def syslog_address(self) -> tuple[bool, str, int] | None:
        """(TLS or not, host, port) of the syslog receiver, None when there is none."""
        if self.syslog is None:
            return None
        scheme, _, address = self.syslog.partition("://")
        host, _, port = address.rpartition(":")
        return scheme == "tls", host.strip("[]"), int(port)


def syslog_url(value: object) -> str:
    """tcp://host:port or tls://host:port (an IPv6 host in brackets)."""
    url = text(value)
    scheme, _, address = url.partition("://")
    host, _, port = address.rpartition(":")
    if scheme not in ("tcp", "tls") or not host.strip("[]") or not port.isdigit():
        raise Invalid(f"must be tcp://host:port or tls://host:port, got {show(value)}")
    if not 1 <= int(port) <= 65535:
        raise Invalid(f"port must be from 1 to 65535, got {show(value)}")
    return url


AUDIT_KEYS: Mapping[str, Callable[[object], object]] = {
    "file": path,
    "syslog": syslog_url,
    "spool": path,
    "ca_certificates": path,
    "certificate": path,
    "private_key": path,
}


def check_audit(audit: AuditSettings) -> None:
    """The TLS keys make sense only with a tls:// syslog receiver; Invalid says which."""
    tls_keys = ("ca_certificates", "certificate", "private_key")
    address = audit.syslog_address
    given = [key for key in tls_keys if getattr(audit, key) is not None]
    if given and not (address and address[0]):
        raise Invalid(f'[audit] {given[0]}: only used with syslog = "tls://host:port"')
    if audit.private_key is not None and audit.certificate is None:
        raise Invalid("[audit] private_key: needs certificate (the client certificate)")
