"""Blobs as objects in an S3-compatible bucket, each under `prefix` + its SHA-256.

A blob is received into a local staging file under [storage] root, hashed on the way,
as on the filesystem; its commit, a job in a store thread, uploads the file and ends
when S3 answered 200, which S3 gives only once the object is durable. The upload carries
the SHA-256 of its body (x-amz-checksum-sha256), which S3 verifies, and is a
conditional create (If-None-Match: *): a blob already stored is not written again, but
claimed with a plain PUT of the same bytes, which sets its Last-Modified to now, the
mark `pacs gc` reads as the filesystem's touched modification time (`pacs.archive.gc`).
Blobs from MULTIPART_FROM bytes go up in parts of PART_BYTES, unconditionally: the same
bytes under the same address are the same object. Every method blocks.

An upload that did not create its object (it was there, or went up in parts) keeps its
staging file until `confirm()`: once the index row naming the blob has committed, and
before the store is answered, a HEAD checks that the object is still there, and the file
is uploaded again if `pacs gc` took it away meanwhile (`pacs.store.s3_listing` says why
this closes the race between a claim and gc's delete). An upload that created its
object needs no such check, nor any request more.
"""

import contextlib
import errno
import hashlib
import logging
import re
import secrets
import shutil
from concurrent.futures import Executor, Future, wait
from pathlib import Path
from typing import BinaryIO

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotFoundError, PreconditionError

from pacs.config_storage import S3Settings
from pacs.errors import StoreFull, StoreUnavailable
from pacs.store.blobstore import STAGING_DIR, BlobRef
from pacs.store.probe import probe_root
from pacs.store.s3_client import connect, read_error, unavailable
from pacs.store.s3_reader import open_object
from pacs.store.staging import StagingFiles

log = logging.getLogger(__name__)
_ADDRESS = re.compile(r"[0-9a-f]{64}")
# Below this, a blob is uploaded from memory in one conditional PUT; from it, in parts read
# from the staging file two at a time (S3's parts are 5 MiB at least, but the last).
MULTIPART_FROM = 16 << 20
PART_BYTES = 8 << 20
_HASH_CHUNK = 1 << 20
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def _local_failure(action: str, exc: OSError) -> StoreUnavailable:
    reason = f"cannot {action}: {exc.strerror or exc}"
    return StoreFull(reason) if exc.errno in _NO_SPACE else StoreUnavailable(reason)


class S3BlobStore:
    """Immutable blobs named by their SHA-256 in one bucket; staging files under `root`."""

    def __init__(
        self,
        settings: S3Settings,
        root: Path,
        *,
        commits: Executor,
        min_free_bytes: int = 0,
    ) -> None:
        self.settings = settings
        self.root = root
        self.staging_dir = root / STAGING_DIR
        self.commits = commits
        self.min_free_bytes = min_free_bytes
        self.client = connect(settings)
        self._staging = StagingFiles(self.staging_dir)

    def key(self, sha256: str) -> str:
        """The object key of the blob with this address."""
        if not _ADDRESS.fullmatch(sha256):
            raise ValueError(f"not a lower-case SHA-256 hex digest: {sha256!r}")
        return self.settings.prefix + sha256

    def location(self, sha256: str) -> str:
        """The blob's bucket and key, for messages."""
        return f"s3://{self.settings.bucket}/{self.key(sha256)}"

    def begin(self) -> "S3StagedBlob":
        """Start receiving a blob; StoreFull when the staging filesystem is below the minimum."""
        try:
            self.staging_dir.mkdir(parents=True, exist_ok=True)
            free = self.free_bytes()
            if free < self.min_free_bytes:
                raise StoreFull(f"{free} bytes free in {self.root}, {self.min_free_bytes} required")
            return S3StagedBlob(self, *self._staging.create())
        except OSError as exc:
            raise _local_failure("create a staging file", exc) from exc

    def open(self, sha256: str) -> BinaryIO:
        """A stored blob, read with ranged GETs; FileNotFoundError when absent, OSError when
        the object store cannot be read."""
        return open_object(self.client, self.key(sha256))

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored (HEAD); StoreUnavailable when the store does not answer."""
        try:
            obstore.head(self.client, self.key(sha256))
        except (FileNotFoundError, NotFoundError):
            return False
        except BaseError as exc:
            raise unavailable(f"look for {self.location(sha256)}", exc) from exc
        return True

    def read(self, sha256: str, size: int) -> bytes:
        """A blob of known size in one GET; FileNotFoundError when absent, OSError when the
        object store cannot be read, ValueError when the object holds another size."""
        key = self.key(sha256)
        try:
            data = bytes(obstore.get(self.client, key).bytes())
        except (FileNotFoundError, NotFoundError):
            raise FileNotFoundError(f"no object {key}") from None
        except BaseError as exc:
            raise read_error(f"read {key}", exc) from exc
        if len(data) != size:
            raise ValueError(f"it holds {len(data)} bytes, not {size}")
        return data

    def verify(self, sha256: str) -> bool:
        """Re-hash a stored blob as it streams in; False when absent or altered."""
        digest = hashlib.sha256()
        try:
            for chunk in obstore.get(self.client, self.key(sha256)).stream(_HASH_CHUNK):
                digest.update(chunk)
        except (FileNotFoundError, NotFoundError):
            return False
        except BaseError as exc:
            raise unavailable(f"read {self.location(sha256)}", exc) from exc
        return digest.hexdigest() == sha256

    def upload(self, sha256: str, staged: Path, size: int) -> bool:
        """Store a staged file under its address (see the module docstring). Blocking.

        True when this upload created the object; False when it found it there already
        or cannot tell (a multipart upload), which is when it needs `S3StagedBlob.confirm`.
        """
        key = self.key(sha256)
        try:
            if size >= MULTIPART_FROM:
                with staged.open("rb") as file:
                    obstore.put(self.client, key, file, chunk_size=PART_BYTES, max_concurrency=2)
                return False
            body = staged.read_bytes()
            try:
                obstore.put(self.client, key, body, mode="create", use_multipart=False)
            except (AlreadyExistsError, PreconditionError, FileExistsError):
                obstore.put(self.client, key, body, use_multipart=False)  # the claim
                return False
        except BaseError as exc:
            raise unavailable(f"store {self.location(sha256)}", exc) from exc
        return True

    def probe(self) -> None:
        """Check that blobs can be staged and uploaded: StoreUnavailable says why not."""
        probe_root(self.root)
        key = f"{self.settings.prefix}.probe/{secrets.token_hex(8)}"
        try:
            obstore.put(self.client, key, b"pacs start-up probe\n", mode="create")
            obstore.delete(self.client, key)
        except BaseError as exc:
            where = f"s3://{self.settings.bucket}/{self.settings.prefix}"
            raise unavailable(f"write to {where}", exc) from exc
        endpoint = self.settings.endpoint or f"AWS {self.settings.region}"
        log.info("blobs in s3://%s/%s at %s", self.settings.bucket, self.settings.prefix, endpoint)

    def free_bytes(self) -> int:
        """Bytes free where blobs are staged (the bucket itself has no such figure)."""
        return shutil.disk_usage(self.root).free

    def close(self) -> None:
        """Nothing is made ahead for this backend: nothing to remove."""
        self._staging.close()


class S3StagedBlob:
    """One blob being received into a staging file, then uploaded by a store-thread job."""

    def __init__(self, store: S3BlobStore, staging_path: Path, file: BinaryIO) -> None:
        self._store = store
        self._path = staging_path
        self._file = file
        self._digest = hashlib.sha256()
        self._size = 0
        self._sealed = False
        self._committing: Future[BlobRef] | None = None
        self._confirming: Future[BlobRef] | None = None
        self._kept = False  # the staging file, until `confirm()`: the upload created nothing
        self._dropped = False

    @property
    def reference(self) -> BlobRef:
        return BlobRef(self._digest.hexdigest(), self._size)

    def write(self, fragment: bytes | memoryview) -> None:
        if self._sealed or self._dropped:
            raise ValueError("staged blob takes no more writes")
        try:
            self._file.write(fragment)
        except OSError as exc:
            raise _local_failure("write a staging file", exc) from exc
        self._digest.update(fragment)
        self._size += memoryview(fragment).nbytes

    def start_sync(self) -> None:
        """No more writes. The staging file needs no fsync: the upload is what is durable."""
        if not self._sealed:
            self._sealed = True
            try:
                self._file.close()
            except OSError as exc:
                raise _local_failure("write a staging file", exc) from exc

    def open_staged(self) -> BinaryIO:
        if not self._sealed:
            self._file.flush()
        return self._path.open("rb")

    def commit_in_background(self) -> Future[BlobRef]:
        """Upload in a store thread; the future ends once S3 answered, or with StoreError."""
        if self._dropped:
            raise ValueError("staged blob was discarded")
        if self._committing is None:
            self.start_sync()
            self._committing = self._store.commits.submit(self._upload)
        return self._committing

    def _upload(self) -> BlobRef:
        ref = self.reference
        created = True
        try:
            created = self._store.upload(ref.sha256, self._path, ref.size)
        except OSError as exc:
            raise _local_failure("read a staging file", exc) from exc
        finally:
            if created:
                self._path.unlink(missing_ok=True)
        self._kept = not created
        return ref

    def confirm(self) -> Future[BlobRef] | None:
        """Once the index committed: make sure the object is still there (module docstring).

        None when the upload created it (nothing to check); otherwise a store-thread job
        whose future ends once the object is there, or with StoreUnavailable.
        """
        if not self._kept:
            return None
        if self._confirming is None:
            self._confirming = self._store.commits.submit(self._confirm)
        return self._confirming

    def _confirm(self) -> BlobRef:
        ref = self.reference
        try:
            if not self._store.exists(ref.sha256):
                log.warning(
                    "%s was taken away by pacs gc while being stored: uploading it again",
                    self._store.location(ref.sha256),
                )
                self._store.upload(ref.sha256, self._path, ref.size)
        except OSError as exc:
            raise _local_failure("read a staging file", exc) from exc
        finally:
            self._path.unlink(missing_ok=True)
        return ref

    def discard(self) -> None:
        """Drop the staging file; an upload or confirmation under way is waited for, not
        undone."""
        if self._committing is not None:
            wait([job for job in (self._committing, self._confirming) if job is not None])
            self._path.unlink(missing_ok=True)  # kept for a confirmation that did not come
            return
        if not self._dropped:
            self._dropped = True
            with contextlib.suppress(OSError):
                self._file.close()
            self._path.unlink(missing_ok=True)
