"""The archive's counters, kept as plain numbers on the event loop and read at scrape time.

Operations, associations and group commits add to an int or a histogram bucket here.
prometheus_client's own metric objects take a lock and, with labels, look their child up
on every update; these take neither: everything that records runs on the one event loop,
an association takes its calling AE's tallies once, and the labels are only spelled out
when Prometheus scrapes (`collector.py`).
"""

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence

# Seconds: a small C-STORE takes about a millisecond, a large C-MOVE minutes.
DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
# Instances per group-commit transaction; group_commit.MAX_BATCH is the largest.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Histogram:
    """Counts of observations per bucket (upper bounds, plus one for +Inf) and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # bisect_left finds the first bound >= value: Prometheus's `le` is inclusive.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> Iterator[tuple[str, float]]:
        """(le, count of observations <= le) per bucket, ending with +Inf."""
        running = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            yield bound, running


class PeerTally:
    """One calling AE's finished operations, by (command field, status)."""

    __slots__ = ("_metrics", "ae_title", "counts")

    def __init__(self, ae_title: str, metrics: "ArchiveMetrics") -> None:
        self.ae_title = ae_title
        self.counts: dict[tuple[int, int], int] = {}
        self._metrics = metrics

    def operation_done(
        self, command_field: int, code: int, seconds: float, stored: int = 0, sent: int = 0
    ) -> None:
        """Count an operation answered with its final status `code` after `seconds`.

        `stored`: bytes of the instance this C-STORE stored; `sent`: bytes a C-GET or
        C-MOVE sent.
        """
        key = (command_field, code)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        metrics = self._metrics
        if (durations := metrics.durations.get(command_field)) is not None:
            durations.observe(seconds)
        if stored:
            metrics.stored_bytes += stored
        if sent:
            metrics.sent_bytes += sent


class ArchiveMetrics:
    """Every counter of one running archive; several archives in a process keep their own."""

    def __init__(self, timed_commands: Iterable[int], operation_name: Callable[[int], str]) -> None:
        # Histograms of durations for these command fields (C-STORE, C-FIND...).
        self.durations = {command: Histogram(DURATION_BUCKETS) for command in timed_commands}
        self.operation_name = operation_name  # read at scrape time only
        self.peers: dict[str, PeerTally] = {}
        self.stored_bytes = 0
        self.sent_bytes = 0
        self.associations_accepted = 0
        self.associations_refused = 0
        self.batch_sizes = Histogram(BATCH_BUCKETS)
        self.instances_added = 0  # new to the index, by this process
        # Measured when Prometheus scrapes (`probes.py`), by name.
        self.gauges: dict[str, float] = {}

    def peer(self, ae_title: str) -> PeerTally:
        """The tallies of one calling AE, created on its first association."""
        tally = self.peers.get(ae_title)
        if tally is None:
            tally = self.peers[ae_title] = PeerTally(ae_title, self)
        return tally

    def association_accepted(self) -> None:
        self.associations_accepted += 1

    def association_refused(self) -> None:
        self.associations_refused += 1

    def batch_committed(self, size: int, added: int) -> None:
        """One group-commit transaction of `size` instances, `added` of them new, committed."""
        self.batch_sizes.observe(size)
        self.instances_added += added
