"""The metrics' own histograms and tallies, as Prometheus reads them."""

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pacs.metrics.collector import build_registry
from pacs.metrics.recorder import ArchiveMetrics, Histogram

C_STORE, C_ECHO = 0x0001, 0x0030


def test_a_value_on_a_bound_counts_in_that_bucket_as_le_means() -> None:
    histogram = Histogram((1, 2, 4))
    for value in (0.5, 1, 2, 3, 9):
        histogram.observe(value)

    assert list(histogram.cumulative()) == [("1", 2), ("2", 3), ("4", 4), ("+Inf", 5)]
    assert histogram.total == 15.5


def test_tallies_become_labelled_samples_and_only_timed_operations_get_durations() -> None:
    metrics = ArchiveMetrics([C_STORE], {C_STORE: "C-STORE", C_ECHO: "C-ECHO"}.__getitem__)
    modality = metrics.peer("CT1")
    assert metrics.peer("CT1") is modality  # an association takes its AE's tally once
    modality.operation_done(C_STORE, 0x0000, 0.003, stored=100)
    modality.operation_done(C_STORE, 0xA700, 0.001)
    metrics.peer("WS").operation_done(C_ECHO, 0x0000, 0.0005)

    text = generate_latest(build_registry(metrics)).decode()

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    store_ok = (("calling_ae", "CT1"), ("operation", "C-STORE"), ("status", "0x0000"))
    store_full = (("calling_ae", "CT1"), ("operation", "C-STORE"), ("status", "0xA700"))
    echo = (("calling_ae", "WS"), ("operation", "C-ECHO"), ("status", "0x0000"))
    assert samples[("pacs_dimse_requests_total", store_ok)] == 1
    assert samples[("pacs_dimse_requests_total", store_full)] == 1
    assert samples[("pacs_dimse_requests_total", echo)] == 1
    assert samples[("pacs_dimse_request_duration_seconds_count", (("operation", "C-STORE"),))] == 2
    assert not any(
        name.startswith("pacs_dimse_request_duration") and ("operation", "C-ECHO") in labels
        for name, labels in samples
    )
    assert samples[("pacs_stored_bytes_total", ())] == 100
