"""What the archive asks of a blob store: the operations a storage backend implements.

`pacs.store.blobstore.FileBlobStore` is the one on a local filesystem. Nothing here
names a path: a backend keeps its layout to itself and hands out file objects.
Every method may block on I/O; async callers run them with `asyncio.to_thread`.
"""

from concurrent.futures import Future
from typing import BinaryIO, Protocol

from pacs.store.blobstore import BlobRef


class StagedBlob(Protocol):
    """One blob being received, staged until it is committed under its address.

    Leaving its `with` block, or `discard()`, without a commit drops what was staged.
    """

    @property
    def reference(self) -> BlobRef:
        """The address and size of the bytes written so far."""
        ...

    def write(self, fragment: bytes | memoryview) -> None:
        """Append a fragment (raises StoreUnavailable or StoreFull)."""
        ...

    def start_sync(self) -> None:
        """Start making the bytes written so far durable; no more writes after this.

        `commit_in_background()` or `discard()` must follow: the one stores the blob, the
        other drops it, and the store keeps the work under way until it is told which.
        """
        ...

    def open_staged(self) -> BinaryIO:
        """Read back the bytes written so far, from their start (the caller closes it)."""
        ...

    def commit_in_background(self) -> Future[BlobRef]:
        """Store the blob under its address; the future holds its reference or StoreError."""
        ...

    def confirm(self) -> Future[BlobRef] | None:
        """Once the index row naming the blob has committed, before the store is answered:
        make sure the blob is still under its address, storing it again if `pacs gc` took
        it away meanwhile (`pacs.store.s3_listing`). None when there is nothing to check:
        gc puts back a blob whose modification time shows that a store just made it
        present (the filesystem's, always; an S3 object, when this upload created it).
        Otherwise a future as of the commit's.
        """
        ...

    def discard(self) -> None:
        """Drop the staged bytes; harmless when repeated or after a commit."""
        ...


class BlobStore(Protocol):
    """Immutable blobs named by the SHA-256 of their bytes."""

    def begin(self, size: int | None = None) -> StagedBlob:
        """Start receiving a blob (raises StoreFull when there is no room for one).

        `size` is the blob's, when its bytes are all at hand before the first write: the
        backend may then hold them in memory rather than in a staging file (S3, for a
        small blob). The bytes written decide the blob all the same.
        """
        ...

    def open(self, sha256: str) -> BinaryIO:
        """A stored blob, open for reading from its start; FileNotFoundError when absent."""
        ...

    def read(self, sha256: str, size: int) -> bytes:
        """A stored blob the index says holds `size` bytes, whole, in as few calls as the
        store allows (for small blobs); FileNotFoundError when absent, ValueError when it
        holds another number of bytes."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether a blob with this address is stored."""
        ...

    def verify(self, sha256: str) -> bool:
        """Whether a stored blob's bytes still hash to its address (False when absent)."""
        ...

    def location(self, sha256: str) -> str:
        """Where the blob is kept, in words an admin can follow (for messages)."""
        ...
