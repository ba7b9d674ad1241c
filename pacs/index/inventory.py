"""What the index says is stored: every instance's blob address, read in address order.

`pacs verify` merges this stream with the store's own listing, so both must come in
the same order: lower-case hex addresses sort alike under every collation a database
may use (digits before letters), and Python compares them the same way.
"""

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pacs.index.database_errors import index_errors
from pacs.index.models import Instance

# Rows per page: one short read each, so pacs serve's writers never wait long on a
# SQLite snapshot, and memory holds one page whatever the archive's size.
PAGE_SIZE = 5_000
# Addresses per IN list: well below SQLite's and asyncpg's limits on bound parameters.
CHUNK = 500

_INSTANCE = Instance.__table__.c


@dataclass(frozen=True, slots=True)
class IndexedBlob:
    """One instance's file as the index records it."""

    sha256: str
    size: int
    sop_instance_uid: str


@dataclass(frozen=True, slots=True)
class Totals:
    """How many instances the index holds and the bytes of their files."""

    instances: int
    bytes: int


class Inventory:
    """Read-only views of the index for checking it against the store."""

    def __init__(self, engine: AsyncEngine, page_size: int = PAGE_SIZE) -> None:
        self._engine = engine
        self._page_size = page_size

    async def totals(self) -> Totals:
        """Count the instances and add up their file sizes (what a full check will read)."""
        query = select(func.count(), func.coalesce(func.sum(_INSTANCE.blob_size), 0))
        with index_errors():
            async with self._engine.connect() as conn:
                count, size = (await conn.execute(query)).one()
        return Totals(int(count), int(size))

    async def pages(self) -> AsyncIterator[list[IndexedBlob]]:
        """Yield every instance's (address, size, SOP Instance UID), ordered by address then UID.

        Keyset pagination: each page is its own statement starting after the last row of
        the one before, so rows added meanwhile are seen or not but never skew the paging.
        """
        after: tuple[str, str] | None = None
        while True:
            with index_errors():
                async with self._engine.connect() as conn:
                    rows = (await conn.execute(self._page(after))).all()
            if not rows:
                return
            page = [IndexedBlob(sha, int(size), uid) for sha, size, uid in rows]
            yield page
            if len(rows) < self._page_size:
                return
            after = (page[-1].sha256, page[-1].sop_instance_uid)

    def _page(self, after: tuple[str, str] | None) -> Select[str, int, str]:
        query = (
            select(_INSTANCE.blob_sha256, _INSTANCE.blob_size, _INSTANCE.sop_instance_uid)
            .order_by(_INSTANCE.blob_sha256, _INSTANCE.sop_instance_uid)
            .limit(self._page_size)
        )
        if after is None:
            return query
        sha, uid = after
        # Spelled out rather than as a row-value comparison so that both databases
        # range-scan the index on blob_sha256 instead of filtering the whole table.
        return query.where(
            and_(
                _INSTANCE.blob_sha256 >= sha,
                or_(_INSTANCE.blob_sha256 > sha, _INSTANCE.sop_instance_uid > uid),
            )
        )

    async def referenced(self, addresses: Collection[str]) -> set[str]:
        """Return which of these addresses some instance's file has."""
        wanted = sorted(set(addresses))
        found: set[str] = set()
        with index_errors():
            async with self._engine.connect() as conn:
                for start in range(0, len(wanted), CHUNK):
                    chunk = wanted[start : start + CHUNK]
                    query = select(_INSTANCE.blob_sha256).where(_INSTANCE.blob_sha256.in_(chunk))
                    found.update((await conn.execute(query.distinct())).scalars())
        return found
