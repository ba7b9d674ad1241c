"""The check of `[server] workers`: several serving processes need PostgreSQL.

Every worker serves the same configuration on the same DICOM port (SO_REUSEPORT); worker
k serves metrics on `[metrics] port + k - 1` (pacs.supervisor gives each its settings).
"""

from pacs.config_values import Invalid

MAX_WORKERS = 64


def check_workers(workers: int, database_url: str, url_source: str, ports: dict[str, int]) -> None:
    """Refuse several workers on SQLite, or a metrics port range over a DICOM port.

    `ports`: the DICOM ports by key, and "[metrics] port" when metrics are served.
    """
    if workers == 1:
        return
    if database_url.startswith("sqlite"):
        raise Invalid(
            f"[server] workers: {workers} processes need PostgreSQL; the SQLite index "
            f"({url_source}) admits one writing process, so set workers = 1"
        )
    metrics = ports.pop("[metrics] port", 0)
    for key, port in ports.items():
        if metrics and metrics <= port < metrics + workers:
            raise Invalid(
                f"[metrics] port: workers serve metrics on {metrics} to "
                f"{metrics + workers - 1}, which includes the {key} {port}"
            )
