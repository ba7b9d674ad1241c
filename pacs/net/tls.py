"""DICOM TLS (PS3.15 B.9, B.12; BCP 195): the SSL contexts, peer subjects, and refusals.

Both contexts allow TLS 1.2 and 1.3 only (OpenSSL picks 1.3 when both ends have it)
and, for TLS 1.2, only forward-secret AEAD suites: ECDHE or DHE key exchange with
AES-GCM or ChaCha20-Poly1305; anonymous and null suites are excluded. TLS 1.3
suites are all AEAD with ephemeral key exchange. Nothing outside `net/` sees TLS;
an association only carries its peer's certificate subject.
"""

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from pacs.audit.auditor import Auditor
from pacs.config_tls import ClientCertificates, TlsSettings
from pacs.errors import StartupError
from pacs.net.negotiation import Rejection, RejectResult, RejectSource
from pacs.net.security_alerts import Alert, alert, node_at
from pacs.net.wire import Wire

log = logging.getLogger(__name__)

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!PSK:!SRP"

# Attribute names as ssl.getpeercert() spells them, and as RFC 4514 does.
_SHORT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}

_VERIFY_MODES = {
    ClientCertificates.REQUIRED: ssl.CERT_REQUIRED,
    ClientCertificates.OPTIONAL: ssl.CERT_OPTIONAL,
    ClientCertificates.NONE: ssl.CERT_NONE,
}

# OpenSSL's reasons for a first record that is not a TLS handshake at all.
_NOT_TLS = {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE"}
_SSL_REASONS = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no client certificate presented",
    "NO_SHARED_CIPHER": "no shared cipher suite (only AEAD suites with forward secrecy)",
    "UNSUPPORTED_PROTOCOL": "TLS version below 1.2 offered",
    "TLSV1_ALERT_UNKNOWN_CA": "the peer does not trust our certificate (unknown CA)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the peer found our certificate expired",
}


def tls_refused(address: str, reason: str, auditor: Auditor | None) -> None:
    """Every refused or failed TLS connection, inbound or outbound, is reported here:
    one WARNING line with the peer address and the reason, and a Security Alert."""
    log.warning("TLS connection with %s refused: %s", address, reason)
    alert(auditor, node_at(address), Alert.TLS_FAILURE, reason)


def _describe_ssl_error(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not accepted: {exc.verify_message}"
    reason = exc.reason or ""
    if reason in _NOT_TLS:
        return f"not a TLS handshake (plaintext DICOM on the TLS port?): {reason}"
    return _SSL_REASONS.get(reason, f"handshake failed: {reason or exc}")


def describe_failure(exc: BaseException) -> str:
    """Say in a few words why a TLS handshake failed."""
    if isinstance(exc, ssl.SSLError):
        return _describe_ssl_error(exc)
    if isinstance(exc, TimeoutError | ConnectionAbortedError):
        return "handshake not completed within the handshake timeout"
    if isinstance(exc, ConnectionError):
        return "connection closed during the handshake"
    return f"handshake failed: {exc!r}"


def _common(context: ssl.SSLContext) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= ssl.OP_NO_RENEGOTIATION
    return context


def _readable(key: str, path: Path) -> None:
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as exc:
        raise StartupError(key, f"cannot read {path}: {exc.strerror or exc}") from exc


def _load_identity(context: ssl.SSLContext, settings: TlsSettings) -> None:
    _readable("[tls] certificate", settings.certificate)
    _readable("[tls] private_key", settings.private_key)
    try:
        context.load_cert_chain(settings.certificate, settings.private_key)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            cause = f"{settings.private_key} is not the key of {settings.certificate}"
            raise StartupError("[tls] private_key", cause) from exc
        cause = f"{settings.certificate} with {settings.private_key}: not a PEM certificate "
        raise StartupError("[tls] certificate", f"{cause}and its key ({exc.reason})") from exc
    except OSError as exc:  # an encrypted key: pacs cannot prompt for a password
        raise StartupError("[tls] private_key", f"cannot load: {exc}") from exc


def _load_trust(context: ssl.SSLContext, settings: TlsSettings) -> None:
    if settings.ca_certificates is None:
        return
    _readable("[tls] ca_certificates", settings.ca_certificates)
    try:
        context.load_verify_locations(cafile=settings.ca_certificates)
    except ssl.SSLError as exc:
        cause = f"{settings.ca_certificates}: no PEM certificate ({exc.reason})"
        raise StartupError("[tls] ca_certificates", cause) from exc


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """The listener's context; StartupError names the [tls] key whose file cannot be used."""
    context = _common(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    _load_identity(context, settings)
    _load_trust(context, settings)
    context.verify_mode = _VERIFY_MODES[settings.client_certificates]
    return context


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """The context of associations pacs opens to `tls = true` peers.

    The peer's chain must lead to [tls] ca_certificates. Host names are not checked:
    DICOM peers are configured by address and their certificates name AEs, not hosts;
    `certificate_subject` on a peer binds it to its certificate instead.
    """
    context = _common(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    _load_identity(context, settings)
    _load_trust(context, settings)
    return context


def format_subject(peercert: dict[str, Any] | None) -> str | None:
    """The RFC 4514 string of a certificate subject from ssl.getpeercert(), most specific first."""
    if not peercert or "subject" not in peercert:
        return None
    pairs: Iterable[tuple[str, str]] = (
        (_SHORT_NAMES.get(name, name), value) for rdn in peercert["subject"] for name, value in rdn
    )
    return ",".join(f"{name}={_escape(value)}" for name, value in reversed(list(pairs)))


def _escape(value: str) -> str:
    escaped = "".join(f"\\{char}" if char in ',+"\\<>;=' else char for char in value)
    return escaped.replace("#", "\\#", 1) if escaped.startswith("#") else escaped


def _attributes(subject: str) -> list[tuple[str, str]]:
    """Split an RFC 4514 subject into (NAME, value) pairs, honouring backslash escapes."""
    pairs: list[tuple[str, str]] = []
    part, escaped = "", False
    for char in subject + ",":
        if escaped:
            part, escaped = part + char, False
        elif char == "\\":
            escaped = True
        elif char in ",+":
            name, _, value = part.partition("=")
            pairs.append((name.strip().upper(), value.strip()))
            part = ""
        else:
            part += char
    return sorted(pairs)


def subject_matches(actual: str | None, wanted: str) -> bool:
    """True when a certificate subject has exactly the wanted attributes, in any order."""
    return actual is not None and _attributes(actual) == _attributes(wanted)


def identity_rejection(
    calling_ae_title: str,
    subject: str | None,
    bound: Mapping[str, str],
    address: str,
    auditor: Auditor | None,
) -> Rejection | None:
    """Reject a calling AE bound to a certificate subject unless it presented that subject.

    A bound AE must come over TLS with a verified certificate carrying the subject;
    anything else is answered "calling AE title not recognized" and reported.
    """
    wanted = bound.get(calling_ae_title)
    if wanted is None or subject_matches(subject, wanted):
        return None
    shown = f"certificate subject {subject!r}" if subject else "no verified certificate"
    why = f"calling AE {calling_ae_title!r} is bound to {wanted!r}, but presented {shown}"
    tls_refused(f"{calling_ae_title}@{address}", why, auditor)
    return Rejection(RejectResult.PERMANENT, RejectSource.SERVICE_USER, 0x03, why)


class Connection(Protocol):
    """What TLS needs of a connection: its transport's extra information."""

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


def peer_subject(connection: Connection) -> str | None:
    """The verified certificate subject of the peer on a TLS connection, else None."""
    ssl_object = connection.get_extra_info("ssl_object")
    return format_subject(ssl_object.getpeercert()) if ssl_object is not None else None


OnConnection = Callable[[Wire], Awaitable[None]]


class _Gate(asyncio.Protocol):
    """Holds a new TCP connection still (no reads) until its TLS handshake starts."""

    def __init__(self, handshake: Callable[[asyncio.Transport], Coroutine[Any, Any, None]]) -> None:
        self._handshake = handshake

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        # Not one byte may reach a stream before the TLS layer is in place.
        transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self._handshake(transport))
        _handshakes.add(task)
        task.add_done_callback(_handshakes.discard)


_handshakes: set[asyncio.Task[None]] = set()


async def start_tls_server(
    host: str,
    port: int,
    context: ssl.SSLContext,
    handshake_timeout: float,
    on_connection: OnConnection,
    *,
    auditor: Auditor | None = None,
    reuse_port: bool = False,
) -> asyncio.Server:
    """Listen for TLS connections; hand each to `on_connection` after its handshake.

    The handshake runs in pacs's own task rather than inside asyncio's server, so that
    a failed one (wrong protocol, untrusted certificate, stalled peer) reaches
    tls_refused() instead of vanishing silently.
    """
    loop = asyncio.get_running_loop()

    async def handshake(transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        address = f"{peer[0]}:{peer[1]}" if peer else "?"
        wire = Wire()
        try:
            async with asyncio.timeout(handshake_timeout):
                secure = await loop.start_tls(
                    transport,
                    wire,
                    context,
                    server_side=True,
                    ssl_handshake_timeout=handshake_timeout,
                )
        except (OSError, TimeoutError) as exc:
            transport.abort()
            tls_refused(address, describe_failure(exc), auditor)
            return
        assert secure is not None
        wire.connection_made(secure)
        await on_connection(wire)

    return await loop.create_server(lambda: _Gate(handshake), host, port, reuse_port=reuse_port)
