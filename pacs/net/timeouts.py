"""The upper layer's timeouts, as the configuration sets them."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait: association set-up and release (ARTIM), a DIMSE reply, socket silence."""

    acse: float | None = 30.0
    dimse: float | None = 60.0
    network: float | None = 300.0
