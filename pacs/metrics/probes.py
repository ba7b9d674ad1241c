"""What is measured when Prometheus scrapes: open associations, free space, index counts.

These cost a query or a system call, so they are taken once per scrape rather than kept
up to date on every operation. The instance count is a COUNT over the whole instance
table, which on a large PostgreSQL index reads the whole table: it is taken at the first
scrape and again when older than RECOUNT_AFTER; in between, the instances this process
added since are added to it. Other processes (`pacs delete`, `pacs import`) change the
index too: their changes show at the next recount.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from pacs.metrics.recorder import ArchiveMetrics

log = logging.getLogger(__name__)

RECOUNT_AFTER = 300.0  # seconds


@dataclass(frozen=True, slots=True)
class Probes:
    """Where the scrape-time values come from; app.py binds them to the archive's parts."""

    open_associations: Callable[[], int]
    free_bytes: Callable[[], int]  # blocking (statvfs): run in a worker thread
    count_instances: Callable[[], Awaitable[int]]
    commitment_states: Callable[[], Awaitable[Mapping[str, int]]]


class ScrapeRefresh:
    """Fills ArchiveMetrics.gauges before each scrape; a probe that fails leaves its gauge out."""

    def __init__(self, metrics: ArchiveMetrics, probes: Probes) -> None:
        self._metrics = metrics
        self._probes = probes
        # When the last count was taken, what it was, and instances_added then.
        self._counted: tuple[float, int, int] | None = None

    async def __call__(self) -> None:
        gauges = self._metrics.gauges
        gauges["associations_open"] = self._probes.open_associations()
        await self._measure("store_free_bytes", self._free_bytes)
        await self._measure("index_instances", self._instances)
        for state in ("pending", "undeliverable"):
            gauges.pop(f"commitments_{state}", None)
        try:
            states = await self._probes.commitment_states()
        except Exception as exc:  # the endpoint still serves every other metric
            log.warning("metrics: cannot count commitment transactions: %s", exc)
        else:
            for state in ("pending", "undeliverable"):
                gauges[f"commitments_{state}"] = states.get(state, 0)

    async def _measure(self, name: str, probe: Callable[[], Awaitable[float]]) -> None:
        try:
            self._metrics.gauges[name] = await probe()
        except Exception as exc:
            self._metrics.gauges.pop(name, None)
            log.warning("metrics: cannot measure %s: %s", name, exc)

    async def _free_bytes(self) -> float:
        return await asyncio.to_thread(self._probes.free_bytes)

    async def _instances(self) -> float:
        """The last count plus what this process added since, counted again when stale."""
        now, added = time.monotonic(), self._metrics.instances_added
        if self._counted is None or now - self._counted[0] >= RECOUNT_AFTER:
            self._counted = (now, await self._probes.count_instances(), added)
        _, count, added_then = self._counted
        return count + added - added_then
