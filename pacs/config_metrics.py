"""Settings of the metrics endpoint: the [metrics] table (off unless it names a port)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pacs.config_values import Invalid, text

DEFAULT_HOST = "127.0.0.1"  # the counters name calling AEs: loopback unless the admin says so


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Where Prometheus scrapes /metrics; no port: no endpoint."""

    host: str = DEFAULT_HOST
    port: int | None = None

    @property
    def enabled(self) -> bool:
        return self.port is not None


def metrics_keys(port: Callable[[object], int]) -> Mapping[str, Callable[[object], object]]:
    """The [metrics] keys and their parsers; config.py gives the port parser."""
    return {"host": text, "port": port}


def check_metrics(metrics: MetricsSettings, dicom_ports: Mapping[str, int]) -> None:
    """Refuse a metrics port that is one of the DICOM ports (`dicom_ports`: key -> port)."""
    if metrics.port is None:
        if metrics.host != DEFAULT_HOST:
            raise Invalid("[metrics] host: set port as well to serve metrics")
        return
    for key, port in dicom_ports.items():
        if metrics.port != 0 and metrics.port == port:
            raise Invalid(f"[metrics] port: {port} is already the {key}")
