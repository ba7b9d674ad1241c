"""Blobs as objects in an S3-compatible bucket, each under `prefix` + its SHA-256.

A blob is received into a local staging file under [storage] root, hashed on the way,
as on the filesystem, or, when it is small and at hand whole, held in memory
(`pacs.store.s3_staged`); its commit, a job in a store thread, uploads it and ends
when S3 answered 200, which S3 gives only once the object is durable. The upload carries
the SHA-256 of its body (x-amz-checksum-sha256), which S3 verifies, and is a
conditional create (If-None-Match: *): a blob already stored is not written again, but
claimed with a plain PUT of the same bytes, which sets its Last-Modified to now, the
mark `pacs gc` reads as the filesystem's touched modification time (`pacs.archive.gc`).
Blobs from MULTIPART_FROM bytes go up in parts of PART_BYTES, unconditionally: the same
bytes under the same address are the same object. An upload that did not create its
object is confirmed once the index committed (`S3Blob.confirm`). Every method blocks.
"""

import hashlib
import logging
import re
import secrets
from concurrent.futures import Executor
from pathlib import Path
from typing import BinaryIO

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotFoundError, PreconditionError

from pacs.config_storage import S3Settings
from pacs.store.blobstore import STAGING_DIR, local_failure
from pacs.store.free_space import FreeSpace
from pacs.store.probe import probe_root
from pacs.store.s3_client import connect, read_error, unavailable
from pacs.store.s3_reader import open_object
from pacs.store.s3_staged import IN_MEMORY_BELOW, S3Blob, S3MemoryBlob, S3StagedBlob
from pacs.store.staging import StagingFiles

log = logging.getLogger(__name__)
_ADDRESS = re.compile(r"[0-9a-f]{64}")
# Below this, a blob is uploaded from memory in one conditional PUT; from it, in parts read
# from the staging file two at a time (S3's parts are 5 MiB at least, but the last).
MULTIPART_FROM = 16 << 20
PART_BYTES = 8 << 20
_HASH_CHUNK = 1 << 20


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
        self.free_space = FreeSpace(root, min_free_bytes)
        self._root_made = False
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

    def begin(self, size: int | None = None) -> S3Blob:
        """Start receiving a blob; StoreFull when the staging filesystem is below the minimum.

        A blob whose `size` is given and below IN_MEMORY_BELOW is held in memory and
        needs no staging directory; any other is staged in a file (`pacs.store.s3_staged`).
        The minimum holds for both, one check per blob as for the filesystem: it guards
        the filesystem under root, which staging files share with whatever else is there.
        """
        in_memory = size is not None and size < IN_MEMORY_BELOW
        try:
            if not self._root_made:
                self.root.mkdir(parents=True, exist_ok=True)
                self._root_made = True
            self.free_space.check()
            if size is not None and in_memory:
                return S3MemoryBlob(self, size)
            self.staging_dir.mkdir(parents=True, exist_ok=True)
            return S3StagedBlob(self, *self._staging.create())
        except OSError as exc:
            action = f"prepare {self.root}" if in_memory else "create a staging file"
            raise local_failure(action, exc) from exc

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
        or cannot tell (a multipart upload), which is when it needs `S3Blob.confirm`.
        """
        if size < MULTIPART_FROM:
            return self.upload_body(sha256, staged.read_bytes())
        try:
            with staged.open("rb") as file:
                obstore.put(
                    self.client, self.key(sha256), file, chunk_size=PART_BYTES, max_concurrency=2
                )
        except BaseError as exc:
            raise unavailable(f"store {self.location(sha256)}", exc) from exc
        return False

    def upload_body(self, sha256: str, body: bytes | bytearray) -> bool:
        """Store bytes held in memory under their address in one PUT: a conditional create,
        else the claim. Blocking. True when this upload created the object."""
        key = self.key(sha256)
        try:
            try:
                obstore.put(self.client, key, body, mode="create", use_multipart=False)
            except (AlreadyExistsError, PreconditionError, FileExistsError):
                obstore.put(self.client, key, body, use_multipart=False)  # the claim
                return False
        except (BaseError, OSError) as exc:
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
        return self.free_space.bytes_free()

    def close(self) -> None:
        """Nothing is made ahead for this backend: nothing to remove."""
        self._staging.close()
