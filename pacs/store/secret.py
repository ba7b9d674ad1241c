"""The store's de-identification secret: random bytes generated once, kept beside the blobs.

De-identification derives replacement UIDs, pseudonyms and date shifts from a secret;
a site that configures none gets this one, so that what it sends keeps the same
replacements across restarts and commands. The file is readable by its owner only
(0600) and travels with a backup of the store, as the mapping it keys must.
"""

import contextlib
import os
import secrets
from pathlib import Path

SECRET_FILE = "deidentify.secret"
_BYTES = 32


def store_secret(root: Path) -> bytes:
    """The secret kept under `root`, created (0600) on first use. Blocking (file I/O)."""
    path = root / SECRET_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    staging = root / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(_BYTES) + "\n")
            file.flush()
            os.fsync(file.fileno())
        # A link fails when another process made it first: both then use the first one.
        with contextlib.suppress(FileExistsError):
            os.link(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return _read(path)


def read_secret_file(path: Path) -> bytes:
    """A configured `secret_file`: its text, surrounding whitespace removed. Blocking."""
    return _read(path)


def _read(path: Path) -> bytes:
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ValueError(f"{path} is empty")
    return value.encode("utf-8")
