"""[web] and [[web.users]]: parsing, refusals naming the key, and the credential hashes."""

from pathlib import Path

import pytest

from pacs.web.credentials import hash_password, token_sha256, verify_password
from tests.unit.config_files import load, refusal

PEER = '[[peers]]\nae_title = "VIEWER"\nhost = "127.0.0.1"\nport = 104\n'
TOKEN = token_sha256("a token")


def test_web_is_off_by_default_and_read_when_set(tmp_path: Path) -> None:
    assert not load(tmp_path, "").web.enabled
    web = load(
        tmp_path,
        PEER + '[web]\nport = 8042\nbase_path = "/dicomweb/"\ncors_origins = ["*"]\n'
        f'[[web.users]]\nname = "ohif"\npeer = "VIEWER"\ntoken_sha256 = "{TOKEN}"\n',
    ).web
    assert (web.port, web.base_path, web.cors_origins) == (8042, "/dicomweb", ("*",))
    assert [(u.name, u.peer, u.token_sha256) for u in web.users] == [("ohif", "VIEWER", TOKEN)]
    assert TOKEN not in repr(web)  # hashes stay out of logs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[web]\nport = 8042\nbase_path = "dicom"\n', "[web] base_path: must be a URL path"),
        ("[web]\nport = 8042\ncolor = 1\n", "unknown key [web] color"),
        ("[web]\nport = 11112\n", "[web] port: 11112 is already the [server] port"),
        ("[web]\nport = 8042\ntls = true\n", "[web] tls: needs a [tls] table"),
        ('[web]\ncors_origins = ["*"]\n', "[web] port: set it"),
        ('[web]\nport = 1\ncors_origins = ["viewer"]\n', "[web] cors_origins: must be origins"),
        (
            '[web]\nport = 1\n[[web.users]]\nname = "a"\npeer = "NOBODY"\n'
            f'token_sha256 = "{TOKEN}"\n',
            "[[web.users]][1] peer: 'NOBODY' is not a configured peer",
        ),
        (
            PEER + '[web]\nport = 1\n[[web.users]]\nname = "a"\npeer = "VIEWER"\n',
            "[[web.users]][1]: needs password_hash or token_sha256",
        ),
        (
            PEER + '[web]\nport = 1\n[[web.users]]\nname = "a"\npeer = "VIEWER"\n'
            'password_hash = "secret"\n',
            "[[web.users]][1] password_hash: must be",
        ),
    ],
)
def test_web_refusals_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    assert refusal(tmp_path, text).startswith(message)


def test_password_hashes_verify_only_their_password() -> None:
    hashed = hash_password("correct horse", iterations=1000)
    assert hashed.startswith("pbkdf2_sha256$1000$")
    assert verify_password("correct horse", hashed)
    assert not verify_password("correct horse!", hashed)
    assert hash_password("correct horse", iterations=1000) != hashed  # salted
