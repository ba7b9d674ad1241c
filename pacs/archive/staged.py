"""What crosses from store to index on the write path: a file being made durable, and its rows.

Ingest hands one `StagedInstance` per received instance to group commit once its header
has passed the checks. The file's commit (fsync, rename to its address, directory fsync)
is then running in a store thread while the index writes the record's rows; the index
transaction commits only once the file is durable (`pacs.threads` maps the threads).
"""

from concurrent.futures import CancelledError, Future
from dataclasses import dataclass

from pacs.errors import StoreUnavailable
from pacs.index.records import InstanceRecord
from pacs.store.blobstore import BlobRef


@dataclass(frozen=True, slots=True)
class StagedInstance:
    """An instance on its way from store to index: its index record, its file being stored.

    `stored` is the store's commit of the file, under way in a store thread: it ends with
    the file's BlobRef (the one the record names), or the StoreUnavailable that failed it.
    The record's rows may be written meanwhile but never committed before it has succeeded.
    """

    record: InstanceRecord
    stored: Future[BlobRef]

    def blob(self) -> BlobRef:
        """The stored file; blocks until its commit is done (it is, once the index committed)."""
        return self.stored.result()

    def failure(self) -> BaseException | None:
        """Why the file could not be stored, once its commit is done; None when it was stored."""
        try:
            return self.stored.exception()
        except CancelledError:
            return StoreUnavailable("the commit of the file to the store was cancelled")
