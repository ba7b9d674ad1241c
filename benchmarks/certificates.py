"""Throwaway PKI for TLS tests and benchmarks: a CA, a server, clients good and bad.

Keys are ECDSA P-256 (fast to make and to handshake with). Written as PEM files.
"""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Credential:
    """A certificate and its private key, as PEM files."""

    certificate: Path
    private_key: Path


@dataclass(frozen=True, slots=True)
class Pki:
    """The files a TLS test needs."""

    ca: Path  # the trusted CA's certificate
    server: Credential  # CN=pacs
    client: Credential  # CN=workstation, signed by the CA
    destination: Credential  # CN=destination: a C-MOVE destination, signed by the CA
    expired: Credential  # signed by the CA, expired yesterday
    untrusted: Credential  # signed by another CA


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pacs tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    is_ca: bool = False,
    expired: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    start, end = (now - 30 * _DAY, now - _DAY) if expired else (now - _DAY, now + 30 * _DAY)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if not is_ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Credential:
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return Credential(cert_path, key_path)


def make_pki(directory: Path) -> Pki:
    """Create the CA, server and client credentials under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("pacs test CA")
    ca_cert = _certificate(ca_name, ca_key, None, is_ca=True)
    ca = _write(directory, "ca", ca_cert, ca_key).certificate
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_name = _name("another CA")

    def issue(stem: str, common_name: str, **options: bool) -> Credential:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer = (other_name, other_key) if options.pop("untrusted", False) else (ca_name, ca_key)
        return _write(
            directory, stem, _certificate(_name(common_name), key, issuer, **options), key
        )

    return Pki(
        ca=ca,
        server=issue("server", "pacs"),
        client=issue("client", "workstation"),
        destination=issue("destination", "destination"),
        expired=issue("expired", "expired workstation", expired=True),
        untrusted=issue("untrusted", "stranger", untrusted=True),
    )
