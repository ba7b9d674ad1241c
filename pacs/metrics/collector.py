"""The archive's counters as Prometheus metric families, spelled out when Prometheus scrapes."""

from collections.abc import Iterator

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from pacs.metrics.recorder import ArchiveMetrics, Histogram

# Gauges measured at scrape time (`probes.py`): name in ArchiveMetrics.gauges -> help text.
GAUGES = {
    "associations_open": "Associations being served now",
    "store_free_bytes": "Bytes free on the filesystem of the store root",
    "index_instances": "Instances in the index",
}
COMMITMENT_STATES = ("pending", "undeliverable")


def _histogram(name: str, doc: str, histogram: Histogram, labels: dict[str, str]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), list(histogram.cumulative()), histogram.total)
    return family


class ArchiveCollector(Collector):
    """Reads one archive's ArchiveMetrics; registered in a registry of the archive's own."""

    def __init__(self, metrics: ArchiveMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # the families are known only when collected; nothing clashes in our registry

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        yield self._requests()
        durations = HistogramMetricFamily(
            "pacs_dimse_request_duration_seconds",
            "Time from a DIMSE request's arrival to its final response",
            labels=["operation"],
        )
        for command, histogram in metrics.durations.items():
            buckets = list(histogram.cumulative())
            durations.add_metric([metrics.operation_name(command)], buckets, histogram.total)
        yield durations
        yield CounterMetricFamily(
            "pacs_stored_bytes",
            "Bytes of the files C-STORE added (not counting content already stored)",
            metrics.stored_bytes,
        )
        yield CounterMetricFamily(
            "pacs_sent_bytes", "Bytes of instances sent by C-GET and C-MOVE", metrics.sent_bytes
        )
        yield CounterMetricFamily(
            "pacs_associations_accepted",
            "Associations accepted",
            metrics.associations_accepted,
        )
        yield CounterMetricFamily(
            "pacs_associations_refused",
            "Connections that did not become an association (rejected or aborted in negotiation)",
            metrics.associations_refused,
        )
        yield _histogram(
            "pacs_group_commit_batch_size",
            "Instances per index transaction of the group commit",
            metrics.batch_sizes,
            {},
        )
        yield from self._gauges()

    def _requests(self) -> Metric:
        metrics = self._metrics
        requests = CounterMetricFamily(
            "pacs_dimse_requests",
            "DIMSE requests answered with a final status",
            labels=["operation", "calling_ae", "status"],
        )
        for tally in list(metrics.peers.values()):
            for (command, code), count in list(tally.counts.items()):
                labels = [metrics.operation_name(command), tally.ae_title, f"0x{code:04X}"]
                requests.add_metric(labels, count)
        return requests

    def _gauges(self) -> Iterator[Metric]:
        gauges = self._metrics.gauges
        for name, doc in GAUGES.items():
            if (value := gauges.get(name)) is not None:
                yield GaugeMetricFamily(f"pacs_{name}", doc, value)
        commitments = GaugeMetricFamily(
            "pacs_commitment_transactions",
            "Storage Commitment transactions waiting for their report, or given up on, by state",
            labels=["state"],
        )
        for state in COMMITMENT_STATES:
            if (value := gauges.get(f"commitments_{state}")) is not None:
                commitments.add_metric([state], value)
        yield commitments


def build_registry(metrics: ArchiveMetrics) -> CollectorRegistry:
    """A registry of the archive's own (not prometheus_client's global one): several
    archives in one process, as in the tests, each serve only their own counters."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ArchiveCollector(metrics))
    ProcessCollector(registry=registry)  # CPU, memory and open files, read from /proc
    return registry
