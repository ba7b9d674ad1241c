"""The start-up check of the store's root: create it, then write, sync and remove a file there."""

import contextlib
import os
import secrets
from pathlib import Path

from pacs.errors import StoreUnavailable
from pacs.store.blobstore import STAGING_DIR


def probe_root(root: Path) -> None:
    """Make sure blobs can be written under `root`; StoreUnavailable says why not.

    The probe goes where every blob starts, the staging directory, and is synced like
    one: a root that refuses this would otherwise refuse every store, after pacs had
    started and answered C-ECHO as if all were well. Blocking.
    """
    existing = next(path for path in (root, *root.parents) if path.exists())
    if not existing.is_dir():
        raise StoreUnavailable(f"cannot use {root}: {existing} is not a directory")
    staging = root / STAGING_DIR
    try:
        staging.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # mkdir(parents=True) names the component that failed, maybe a parent of root.
        failed = exc.filename if exc.filename is not None else staging
        raise StoreUnavailable(f"cannot create directory {failed}: {_cause(exc)}") from exc
    probe = staging / f"probe-{secrets.token_hex(8)}"
    try:
        _write_synced(probe)
        probe.unlink()
    except OSError as exc:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
        raise StoreUnavailable(f"cannot write a file in {staging}: {_cause(exc)}") from exc


def _write_synced(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b"pacs start-up probe\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def _cause(exc: OSError) -> str:
    return exc.strerror or str(exc)
