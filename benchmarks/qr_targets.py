"""The Query/Retrieve SCPs the query and retrieve benchmarks compare, and their versions.

They are the TARGETS that also serve C-FIND, C-MOVE and C-GET: pacs on SQLite, pacs-baseline
(pacs from the checkout at PACS_BASELINE_SRC, configured alike), pacs-pg (pacs on a
PostgreSQL database of its own, see benchmarks.postgres) and Orthanc; each is started
knowing the C-MOVE destinations a benchmark names.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.servers import Destination, Server
from benchmarks.targets import (
    TARGETS,
    start_orthanc,
    start_pacs,
    start_pacs_baseline,
    start_pacs_postgres,
)


@dataclass(frozen=True, slots=True)
class QRTarget:
    """A Q/R SCP: whether it can run here, how to start it knowing some move destinations."""

    name: str
    missing: Callable[[], str | None]
    start: Callable[[Path, Sequence[Destination]], Server]
    version: Callable[[], str]


_STARTS: dict[str, Callable[[Path, Sequence[Destination]], Server]] = {
    "pacs": start_pacs,
    "pacs-baseline": start_pacs_baseline,
    "orthanc": start_orthanc,
    "pacs-pg": start_pacs_postgres,
}
QR_TARGETS = {
    name: QRTarget(name, TARGETS[name].missing, start, TARGETS[name].version)
    for name, start in _STARTS.items()
}


def choose(names: str) -> tuple[list[QRTarget], dict[str, str]]:
    """The named targets that can run here, and why the others cannot; unknown names raise."""
    chosen, skipped = [], {}
    for name in filter(None, (part.strip() for part in names.split(","))):
        if name not in QR_TARGETS:
            raise ValueError(f"unknown target {name!r}; known: {', '.join(QR_TARGETS)}")
        reason = QR_TARGETS[name].missing()
        if reason is None:
            chosen.append(QR_TARGETS[name])
        else:
            skipped[name] = reason
    return chosen, skipped
