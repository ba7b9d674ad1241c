"""Blobs on their way to S3: received into a staging file, or held whole in memory.

Both hash their bytes as they are written and are uploaded by one store-thread job
(`S3BlobStore.upload`, `upload_body`). A blob whose size is known before its first write
(a data set that arrived whole) and is below IN_MEMORY_BELOW is held in memory: no
staging file is made, written or read back. Every other blob goes to a staging file.

An upload that did not create its object (it was there, or went up in parts) keeps its
bytes, the staging file or the buffer, until `confirm()`: once the index row naming the
blob has committed, and before the store is answered, a HEAD checks that the object is
still there, and the bytes are uploaded again if `pacs gc` took it away meanwhile
(`pacs.store.s3_listing` says why this closes the race between a claim and gc's
delete). An upload that created its object needs no such check, nor any request more.

Memory stays bounded: a buffer is below IN_MEMORY_BELOW and lives only while its one
instance is being stored. An association stores one instance at a time, so there is at
most one buffer per association in flight (a STOW-RS request or `pacs import` bounds the
stores it has under way); the buffer goes once the upload created the object, once the
confirmation is done, or when the store fails.
"""

import contextlib
import hashlib
import io
import logging
from abc import ABC, abstractmethod
from concurrent.futures import Future, wait
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pacs.store.blobstore import BlobRef, local_failure

if TYPE_CHECKING:
    from pacs.store.s3_store import S3BlobStore

log = logging.getLogger(__name__)
# A blob whose size is known ahead and below this is held in memory, not staged. It is
# above the largest data set ingest hands over whole (below its 1 MiB batch) with its
# File Meta Information.
IN_MEMORY_BELOW = 2 << 20


class S3Blob(ABC):
    """One blob being received, then uploaded by a store-thread job (`StagedBlob`)."""

    def __init__(self, store: "S3BlobStore") -> None:
        self._store = store
        self._digest = hashlib.sha256()
        self._size = 0
        self._sealed = False
        self._committing: Future[BlobRef] | None = None
        self._confirming: Future[BlobRef] | None = None
        self._kept = False  # the bytes, until `confirm()`: the upload created nothing
        self._dropped = False

    @property
    def reference(self) -> BlobRef:
        return BlobRef(self._digest.hexdigest(), self._size)

    def write(self, fragment: bytes | memoryview) -> None:
        if self._sealed or self._dropped:
            raise ValueError("staged blob takes no more writes")
        self._append(fragment)
        self._digest.update(fragment)
        self._size += memoryview(fragment).nbytes

    def start_sync(self) -> None:
        """No more writes. Nothing is synced: the upload is what is durable."""
        if not self._sealed:
            self._sealed = True
            self._seal()

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
            created = self._put(ref)
        finally:
            if created:
                self._release()
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
                self._put(ref)
        finally:
            self._release()
        return ref

    def discard(self) -> None:
        """Drop the bytes; an upload or confirmation under way is waited for, not undone."""
        if self._committing is not None:
            wait([job for job in (self._committing, self._confirming) if job is not None])
            self._release()  # kept for a confirmation that did not come
            return
        if not self._dropped:
            self._dropped = True
            self._release()

    @abstractmethod
    def _append(self, fragment: bytes | memoryview) -> None:
        """Keep a fragment after those written before."""

    @abstractmethod
    def _seal(self) -> None:
        """Make the bytes ready for their upload."""

    @abstractmethod
    def open_staged(self) -> BinaryIO:
        """Read back the bytes written so far, from their start (the caller closes it)."""

    @abstractmethod
    def _put(self, ref: BlobRef) -> bool:
        """Upload the bytes under their address; whether this created the object."""

    @abstractmethod
    def _release(self) -> None:
        """Let the bytes go: no upload needs them any longer; harmless when repeated."""


class S3StagedBlob(S3Blob):
    """A blob received into a staging file, which the upload reads."""

    def __init__(self, store: "S3BlobStore", staging_path: Path, file: BinaryIO) -> None:
        super().__init__(store)
        self._path = staging_path
        self._file = file

    def _append(self, fragment: bytes | memoryview) -> None:
        try:
            self._file.write(fragment)
        except OSError as exc:
            raise local_failure("write a staging file", exc) from exc

    def _seal(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            raise local_failure("write a staging file", exc) from exc

    def open_staged(self) -> BinaryIO:
        if not self._sealed:
            self._file.flush()
        return self._path.open("rb")

    def _put(self, ref: BlobRef) -> bool:
        try:
            return self._store.upload(ref.sha256, self._path, ref.size)
        except OSError as exc:
            raise local_failure("read a staging file", exc) from exc

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        self._path.unlink(missing_ok=True)


class S3MemoryBlob(S3Blob):
    """A blob held whole in memory: its fragments copied into one buffer, uploaded from it.

    The buffer is made at the size announced, so filling it copies each byte once; more
    or fewer bytes than announced are kept all the same.
    """

    def __init__(self, store: "S3BlobStore", size: int) -> None:
        super().__init__(store)
        self._body: bytearray | None = bytearray(size)

    def _append(self, fragment: bytes | memoryview) -> None:
        assert self._body is not None  # released only once sealed or dropped
        start = self._size
        self._body[start : start + memoryview(fragment).nbytes] = fragment

    def _seal(self) -> None:
        if self._body is not None:  # None: discarded
            del self._body[self._size :]

    def open_staged(self) -> BinaryIO:
        if self._body is None:
            raise ValueError("staged blob was released")
        return io.BytesIO(self._body[: self._size])

    def _put(self, ref: BlobRef) -> bool:
        if self._body is None:
            raise ValueError("staged blob was discarded")
        return self._store.upload_body(ref.sha256, self._body)

    def _release(self) -> None:
        self._body = None
