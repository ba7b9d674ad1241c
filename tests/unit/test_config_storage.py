"""[storage] backend and [storage.s3]: parsing, and refusals that name the key."""

from pathlib import Path

import pytest

from pacs.config_storage import S3Settings, StorageBackend
from tests.unit.config_files import load, refusal

S3 = '[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "pacs-blobs"\n'


def test_the_filesystem_is_the_default_backend(tmp_path: Path) -> None:
    storage = load(tmp_path, "").storage
    assert (storage.backend, storage.s3) == (StorageBackend.FILESYSTEM, None)


def test_the_s3_table_is_read_with_its_defaults(tmp_path: Path) -> None:
    storage = load(tmp_path, S3).storage
    assert storage.backend is StorageBackend.S3
    assert storage.s3 == S3Settings("pacs-blobs", None, "", "us-east-1")


def test_every_s3_key_is_read(tmp_path: Path) -> None:
    text = S3 + 'endpoint = "https://s3.example.org:9000/"\nprefix = "pacs/"\nregion = "eu-1"\n'
    assert load(tmp_path, text).storage.s3 == S3Settings(
        "pacs-blobs", "https://s3.example.org:9000", "pacs/", "eu-1"
    )


def test_the_s3_table_may_be_inline(tmp_path: Path) -> None:
    text = '[storage]\nbackend = "S3"\ns3 = { bucket = "pacs-blobs", prefix = "a/" }\n'
    assert load(tmp_path, text).storage.s3 == S3Settings("pacs-blobs", prefix="a/")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[storage]\nbackend = "s3"\n', '[storage] backend: "s3" needs a [storage.s3] table'),
        ('[storage]\nbackend = "ftp"\n', "[storage] backend: must be one of filesystem, s3"),
        ("[storage.s3]\nregion = 'x'\n", "[storage.s3]: missing key bucket"),
        (S3 + 'endpoint = "s3.example.org"\n', "[storage.s3] endpoint: must be an http"),
        (S3.replace("pacs-blobs", "Pacs_Blobs"), "[storage.s3] bucket: must be an S3 bucket"),
        (S3 + 'prefix = "/abs"\n', "[storage.s3] prefix: must be a string not starting"),
        (S3 + 'acces_key = "x"\n', "unknown key [storage.s3] acces_key"),
    ],
)
def test_bad_storage_settings_are_refused_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    assert refusal(tmp_path, text).startswith(message)
