"""[tls] and the peers' `tls` keys: parsing, the checks between them, and the SSL contexts
built from them at start-up (unreadable files, a key that is not the certificate's)."""

import ssl
from pathlib import Path

import pytest

from benchmarks.certificates import Pki, make_pki
from pacs.config import Peer
from pacs.config_tls import ClientCertificates, TlsSettings
from pacs.errors import StartupError
from pacs.net.tls import client_context, format_subject, server_context, subject_matches
from tests.unit.config_files import load, refusal

TLS = '[tls]\nport = 2762\ncertificate = "/c.crt"\nprivate_key = "/c.key"\n'


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_tls_table_and_peer_keys_are_read(tmp_path: Path) -> None:
    text = (
        TLS + 'ca_certificates = "/ca.crt"\nclient_certificates = "Optional"\n'
        "handshake_timeout = 2\nplain_listener = false\n"
        '[[peers]]\nae_title = "WS"\nhost = "h"\nport = 1\ntls = true\n'
        'certificate_subject = "CN=ws,O=Hospital"\n'
    )
    settings = load(tmp_path, text)

    assert settings.tls == TlsSettings(
        port=2762,
        certificate=Path("/c.crt"),
        private_key=Path("/c.key"),
        ca_certificates=Path("/ca.crt"),
        client_certificates=ClientCertificates.OPTIONAL,
        handshake_timeout=2.0,
        plain_listener=False,
    )
    assert settings.peers == (Peer("WS", "h", 1, tls=True, certificate_subject="CN=ws,O=Hospital"),)


def test_without_a_tls_table_there_is_no_tls(tmp_path: Path) -> None:
    assert load(tmp_path, "").tls is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[tls]\nport = 2762\n", "[tls]: missing key certificate, private_key"),
        (TLS, "[tls] ca_certificates: needed to verify client certificates"),
        (
            TLS + 'client_certificates = "none"\n[[peers]]\nae_title = "WS"\nhost = "h"\n'
            "port = 1\ntls = true\n",
            "[tls] ca_certificates: needed to verify [[peers]][1]'s certificate",
        ),
        (
            '[[peers]]\nae_title = "WS"\nhost = "h"\nport = 1\ntls = true\n',
            "[[peers]][1] tls: needs a [tls] table (our certificate)",
        ),
        (
            TLS + 'client_certificates = "none"\n[server]\nport = 2762\n',
            "[tls] port: 2762 is also [server] port; TLS needs its own port",
        ),
        (
            TLS + 'client_certificates = "sometimes"\n',
            "[tls] client_certificates: must be one of required, optional, none",
        ),
        (TLS + "handshake_timeout = 0\n", "[tls] handshake_timeout: must be a positive number"),
        (
            '[[peers]]\nae_title = "WS"\nhost = "h"\nport = 1\ncertificate_subject = "CN=ws"\n',
            "[[peers]][1] certificate_subject: needs a [tls] table",
        ),
        (
            TLS + 'client_certificates = "none"\n[[peers]]\nae_title = "WS"\nhost = "h"\n'
            'port = 1\ncertificate_subject = "CN=ws"\n',
            "[[peers]][1] certificate_subject: needs [tls] client_certificates",
        ),
    ],
)
def test_inconsistent_tls_settings_are_refused_naming_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert refusal(tmp_path, text).startswith(expected)


def _settings(pki: Pki, **changes: Path) -> TlsSettings:
    files = {
        "certificate": pki.server.certificate,
        "private_key": pki.server.private_key,
        "ca_certificates": pki.ca,
        **changes,
    }
    return TlsSettings(0, files["certificate"], files["private_key"], files["ca_certificates"])


def test_contexts_allow_tls_1_2_and_up_with_aead_forward_secret_suites_only(pki: Pki) -> None:
    for context in (server_context(_settings(pki)), client_context(_settings(pki))):
        suites = context.get_ciphers()
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        assert suites
        for suite in suites:
            if suite["protocol"] == "TLSv1.3":
                continue
            assert suite["aead"], suite["name"]
            assert suite["kea"] in ("kx-ecdhe", "kx-dhe"), suite["name"]
            assert suite["auth"] != "auth-null", suite["name"]
    assert server_context(_settings(pki)).verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        ("certificate", "[tls] certificate", "cannot read"),
        ("private_key", "[tls] private_key", "cannot read"),
        ("ca_certificates", "[tls] ca_certificates", "cannot read"),
    ],
)
def test_unreadable_files_name_their_key(
    pki: Pki, tmp_path: Path, change: str, key: str, reason: str
) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(StartupError) as caught:
        server_context(_settings(pki, **{change: missing}))

    assert str(caught.value).startswith(f"{key}: {reason} {missing}: No such file")


def test_a_key_that_is_not_the_certificates_names_private_key(pki: Pki) -> None:
    settings = _settings(pki, private_key=pki.client.private_key)

    with pytest.raises(StartupError, match=r"^\[tls\] private_key: .* is not the key of "):
        server_context(settings)


def test_a_file_that_is_no_certificate_is_refused(pki: Pki, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")

    with pytest.raises(StartupError, match=r"^\[tls\] certificate: "):
        server_context(_settings(pki, certificate=junk))
    with pytest.raises(StartupError, match=r"^\[tls\] ca_certificates: "):
        server_context(_settings(pki, ca_certificates=junk))


def test_subject_is_rfc4514_and_matches_in_any_order() -> None:
    peercert = {
        "subject": (
            (("countryName", "CH"),),
            (("organizationName", "A, B"),),
            (("commonName", "ws"),),
        )
    }

    subject = format_subject(peercert)

    assert subject == "CN=ws,O=A\\, B,C=CH"
    assert subject_matches(subject, "C=CH, O=A\\, B, cn=ws")
    assert not subject_matches(subject, "CN=ws,O=A\\, B")
    assert not subject_matches(None, "CN=ws")
    assert format_subject({}) is None
