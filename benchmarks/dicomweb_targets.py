"""The DICOMweb servers the benchmark compares: pacs with [web], and Orthanc 1.10 with its
DICOMweb plugin (Debian's orthanc-dicomweb), each started empty in its own directory.

Orthanc's plugin keeps its defaults (series metadata read from the stored files), as an
installation that only enables it would run.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.processes import free_port, wait_for_port
from benchmarks.servers import Server, need_binary, need_module
from benchmarks.targets import START_TIMEOUT, start_orthanc, start_pacs

ORTHANC_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


@dataclass(frozen=True, slots=True)
class WebTarget:
    """A running server and the base URL of its DICOMweb service."""

    name: str
    server: Server
    base_url: str


def start_pacs_web(workdir: Path) -> WebTarget:
    port = free_port()
    extra = f'[web]\nhost = "127.0.0.1"\nport = {port}\n'
    server = start_pacs(workdir, extra=extra)
    wait_for_port(server.process, port, server.log, START_TIMEOUT)
    return WebTarget("pacs", replace(server, http_port=port), f"http://127.0.0.1:{port}/dicom-web")


def start_orthanc_web(workdir: Path) -> WebTarget:
    overrides = {
        "Plugins": [str(ORTHANC_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    server = start_orthanc(workdir, overrides=overrides)
    return WebTarget("orthanc", server, f"http://127.0.0.1:{server.http_port}/dicom-web")


def _orthanc_missing() -> str | None:
    missing = need_binary("Orthanc")()
    if missing is None and not ORTHANC_PLUGIN.is_file():
        missing = f"{ORTHANC_PLUGIN} missing (apt-get install orthanc-dicomweb)"
    return missing


# name -> (why it cannot run here or None, how to start it)
WEB_TARGETS: dict[str, tuple[Callable[[], str | None], Callable[[Path], WebTarget]]] = {
    "pacs": (need_module("pacs"), start_pacs_web),
    "orthanc": (_orthanc_missing, start_orthanc_web),
}
