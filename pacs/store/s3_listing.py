"""The S3 backend for `pacs verify` and `pacs gc`: the bucket listed in address order,
blobs re-hashed as they stream in, and removals.

Listing asks for the keys after `prefix` + an address's first two digits (start-after)
and stops at the first key past them, so memory holds one such slice of names at a time,
as on the filesystem. Removal for gc (`S3Sweeper`): S3 has no rename, so a blob is taken
away by a HEAD (its age is the Last-Modified its key had then), a server-side copy to
`prefix.gc/<address>` and a delete D of its key. One collection at a time per bucket:
`exclusive` creates `prefix.gc/lock` with a conditional PUT. Every method blocks.

Unlike the filesystem's rename, taking away is not atomic: a store that claims the blob
(`S3BlobStore.upload_body`) between the HEAD and D loses its object, and gc judges the blob
by the Last-Modified from before the claim. Two checks keep every acknowledged instance's
blob (the steps are those of `pacs.archive.gc`): gc asks the index at t, after D, and
puts back the blobs referenced by then (step 5); a store whose upload did not create its
object (it was there already, or went up in parts) makes sure, with a HEAD h after its
index row committed at c and before it acknowledges, that the object is still there, and
uploads it again if not (`S3Blob.confirm`). Take a store that acknowledged with a
row referencing blob B, and a collection that deletes B's key at D:

- c before t: gc's question at t finds the row, and gc puts B back.
- c after t, and the upload did not create the object: h > c > t > D, so the store's
  HEAD comes after the delete (after those of every collection that asked before c)
  and uploads B again if it is gone; nothing deletes it after that but a collection
  that asks after c, which puts it back.
- c after t, and the upload created the object at s (If-None-Match: * succeeded, so the
  key was absent at s). If s > D, the key is the store's own, and this collection takes
  an address away once. If s < D, gc's HEAD came after s: had it come before, the key
  it found would have gone before s, but only gc's own D deletes keys (deleting an
  instance leaves its blob to gc). So the Last-Modified gc read is s or later, and
  s > c - STALE_AGE > t - STALE_AGE > a - GRACE (a, when gc judged the age, is before
  t): the blob was young, and gc put it back at once.

This assumes S3's strong consistency (a HEAD after a delete finds nothing: AWS since
2020, MinIO), that a query begun after an index commit sees it, one collection at a time,
and, for created objects only, that S3's clock and gc's agree to well within GRACE -
STALE_AGE. The confirmation costs one HEAD for a store that deduplicates (or a multipart
upload); a store of new bytes makes no request more.
"""

import contextlib
import hashlib
import re
import time
from collections.abc import Iterator
from datetime import datetime

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotFoundError, PreconditionError

from pacs.errors import StoreUnavailable
from pacs.store.gc import remove_staging_file
from pacs.store.listing import BackendListing, Rehash
from pacs.store.s3_client import reason, unavailable
from pacs.store.s3_store import S3BlobStore

_ADDRESS = re.compile(r"[0-9a-f]{64}")
_READ_CHUNK = 1 << 20
HOLDING = ".gc/"
_MISSING = (FileNotFoundError, NotFoundError)


class S3Listing(BackendListing[S3BlobStore]):
    """Walk an S3BlobStore in address order and re-read its blobs (`verify.Holdings`)."""

    def __init__(self, store: S3BlobStore) -> None:
        super().__init__(store)
        self._prefix = store.settings.prefix
        self._keys: _Peekable | None = None
        self._last_start = ""

    def prefixes(self) -> list[str]:
        """Every two-digit start an address can have: keys are not grouped in directories."""
        return [f"{n:02x}" for n in range(256)]

    def addresses(self, prefix: str) -> list[str]:
        """Every stored address starting with `prefix`, sorted.

        Asked in ascending order (as verify and gc do), the calls share one listing, so
        the whole bucket costs one LIST request per thousand keys, not one per prefix.
        """
        start = self._prefix + prefix
        if self._keys is None or start < self._last_start:
            self._keys = _Peekable(self._keys_after(start))
        self._last_start = start
        found = []
        while (key := self._keys.peek()) is not None and (key < start or key.startswith(start)):
            next(self._keys)
            if key.startswith(start) and _ADDRESS.fullmatch(address := key[len(self._prefix) :]):
                found.append(address)
        return found

    def _keys_after(self, start: str) -> Iterator[str]:
        # A string prefix, not a path: list the keys after `start` under its directory.
        directory = start.rpartition("/")[0] or None
        try:
            for chunk in obstore.list(self._store.client, directory, offset=start):
                for meta in chunk:
                    yield meta["path"]
        except BaseError as exc:
            raise unavailable("list the bucket", exc) from exc

    def age(self, sha256: str) -> float | None:
        """Seconds since the blob was last written or claimed; None when not stored."""
        modified = _last_modified(self._store, self._store.key(sha256))
        return None if modified is None else max(0.0, time.time() - modified.timestamp())

    def rehash(self, sha256: str) -> Rehash:
        """Stream a stored blob through SHA-256 and return what it hashes to."""
        digest = hashlib.sha256()
        size = 0
        try:
            result = obstore.get(self._store.client, self._store.key(sha256))
            for chunk in result.stream(_READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        except _MISSING:
            return Rehash(None, size)
        except BaseError as exc:
            return Rehash(None, size, reason(exc))
        return Rehash(digest.hexdigest(), size)


class _Peekable:
    """An iterator of keys whose next one can be looked at without taking it."""

    def __init__(self, keys: Iterator[str]) -> None:
        self._keys = keys
        self._next: str | None = None

    def peek(self) -> str | None:
        if self._next is None:
            self._next = next(self._keys, None)
        return self._next

    def __next__(self) -> str:
        key = self.peek()
        if key is None:
            raise StopIteration
        self._next = None
        return key


def _last_modified(store: S3BlobStore, key: str) -> datetime | None:
    try:
        return obstore.head(store.client, key)["last_modified"]
    except _MISSING:
        return None
    except BaseError as exc:
        raise unavailable(f"look at {key}", exc) from exc


class S3Sweeper:
    """Takes blobs away from their keys and removes them, or returns them (`gc.Sweeper`)."""

    def __init__(self, store: S3BlobStore) -> None:
        self._store = store
        self._holding = store.settings.prefix + HOLDING
        self._taken: dict[str, float] = {}  # address -> its Last-Modified, as a timestamp

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the bucket's collection lock; StoreUnavailable when another gc holds it."""
        lock = self._holding + "lock"
        where = f"s3://{self._store.settings.bucket}/{lock}"
        try:
            obstore.put(self._store.client, lock, b"pacs gc\n", mode="create")
        except (AlreadyExistsError, PreconditionError, FileExistsError) as exc:
            raise StoreUnavailable(
                f"another pacs gc is running on this bucket ({where} exists; "
                "remove it if no gc runs)"
            ) from exc
        except BaseError as exc:
            raise unavailable(f"create {where}", exc) from exc
        try:
            yield
        finally:
            with contextlib.suppress(BaseError):
                obstore.delete(self._store.client, lock)

    def leftovers(self) -> list[str]:
        """Addresses taken away by a collection that stopped before deciding."""
        try:
            stream = obstore.list(self._store.client, self._holding.rstrip("/"))
            keys = [meta["path"] for chunk in stream for meta in chunk]
        except BaseError as exc:
            raise unavailable("list the bucket", exc) from exc
        names = (key.removeprefix(self._holding) for key in keys)
        return sorted(name for name in names if _ADDRESS.fullmatch(name))

    def take_away(self, sha256: str) -> bool:
        """Copy a blob into the holding place and delete its key; False when not stored."""
        key = self._store.key(sha256)
        modified = _last_modified(self._store, key)
        if modified is None:
            return False
        try:
            obstore.copy(self._store.client, key, self._holding + sha256)
            obstore.delete(self._store.client, key)
        except _MISSING:
            return False
        except BaseError as exc:
            raise unavailable(f"take {key} away", exc) from exc
        self._taken[sha256] = modified.timestamp()
        return True

    def age(self, sha256: str) -> float | None:
        """Seconds since a taken-away blob was last written or claimed at its key."""
        modified = self._taken.get(sha256)
        if modified is None:
            held = _last_modified(self._store, self._holding + sha256)
            modified = None if held is None else held.timestamp()
        return None if modified is None else time.time() - modified

    def put_back(self, sha256: str) -> None:
        """Return a taken-away blob to its key (a store meanwhile wrote the same bytes)."""
        held = self._holding + sha256
        try:
            obstore.copy(self._store.client, held, self._store.key(sha256))
            obstore.delete(self._store.client, held)
        except BaseError as exc:
            raise unavailable(f"put {held} back", exc) from exc
        self._taken.pop(sha256, None)

    def discard(self, sha256: str) -> int:
        """Remove a taken-away blob for good; its size in bytes (0 if gone)."""
        held = self._holding + sha256
        try:
            size = int(obstore.head(self._store.client, held)["size"])
            obstore.delete(self._store.client, held)
        except _MISSING:
            return 0
        except BaseError as exc:
            raise unavailable(f"remove {held}", exc) from exc
        self._taken.pop(sha256, None)
        return size

    def remove_staging(self, name: str, older_than: float) -> int | None:
        return remove_staging_file(self._store.staging_dir, name, older_than)
