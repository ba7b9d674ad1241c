"""What is measured when Prometheus scrapes: open associations, free space, index counts.

These cost a query or a system call, so they are taken once per scrape rather than kept
up to date on every operation. The instance count is a COUNT over the whole instance
table: it is taken again only when something was stored since, or when it is older than
RECOUNT_AFTER (other processes, `pacs delete` or `pacs import`, change it too).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from pacs.metrics.recorder import ArchiveMetrics

log = logging.getLogger(__name__)

RECOUNT_AFTER = 60.0  # seconds


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
        self._counted: tuple[float, int] | None = None  # (when, stored_bytes then)

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

    async def _measure(self, name: str, probe: Callable[[], Awaitable[float | None]]) -> None:
        try:
            value = await probe()
        except Exception as exc:
            self._metrics.gauges.pop(name, None)
            log.warning("metrics: cannot measure %s: %s", name, exc)
            return
        if value is not None:
            self._metrics.gauges[name] = value

    async def _free_bytes(self) -> float:
        return await asyncio.to_thread(self._probes.free_bytes)

    async def _instances(self) -> float | None:
        """A fresh count, or None to keep the last one."""
        now, stored = time.monotonic(), self._metrics.stored_bytes
        if (
            self._counted is not None
            and self._counted[1] == stored
            and now - self._counted[0] < RECOUNT_AFTER
            and "index_instances" in self._metrics.gauges
        ):
            return None
        count = await self._probes.count_instances()
        self._counted = (now, stored)
        return count
