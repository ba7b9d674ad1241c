"""Which SOP Instances the index holds already, and in which file: `pacs import` skips those."""

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from pacs.index.database_errors import index_errors
from pacs.index.models import Instance

# UIDs per IN list: well below SQLite's and asyncpg's limits on bound parameters.
CHUNK = 500

_INSTANCE = Instance.__table__.c


class Presence:
    """Look up instances by SOP Instance UID, many per statement."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def addresses(self, uids: Collection[str]) -> dict[str, str]:
        """The blob address of each of these instances that the index holds."""
        wanted = sorted(set(uids))
        found: dict[str, str] = {}
        if not wanted:
            return found
        with index_errors():
            async with self._engine.connect() as conn:
                for start in range(0, len(wanted), CHUNK):
                    chunk = wanted[start : start + CHUNK]
                    query = select(_INSTANCE.sop_instance_uid, _INSTANCE.blob_sha256).where(
                        _INSTANCE.sop_instance_uid.in_(chunk)
                    )
                    found.update((uid, sha) for uid, sha in await conn.execute(query))
        return found
