"""The OHIF viewer for the browser test: its prebuilt dist/ from the @ohif/app npm
package, fetched once into a cache outside the repository, served on a loopback port.

The server answers /app-config.js with a DICOMweb data source pointing at the archive
under test, and every path that is not a file with index.html (OHIF routes in the
browser: /viewer?StudyInstanceUIDs=...). `python -m tests.browser.ohif_site` fetches the
package (CI runs it as a step of its own, so its cost shows).
"""

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Pinned: the test drives the viewer's pages, which change between releases.
OHIF_VERSION = "3.12.10"
CACHE_VARIABLE = "PACS_OHIF_CACHE"


def cache_root() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    return Path(configured) if configured else Path.home() / ".cache" / "pacs-ohif"


def dist_path() -> Path:
    return cache_root() / OHIF_VERSION / "dist"


def fetch_dist() -> Path:
    """dist/ of @ohif/app at OHIF_VERSION, downloaded with `npm pack` unless cached."""
    dist = dist_path()
    if (dist / "index.html").is_file():
        return dist
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: it fetches the OHIF viewer (@ohif/app)")
    dist.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dist.parent) as work:
        argv = [npm, "pack", "--silent", f"@ohif/app@{OHIF_VERSION}"]
        result = subprocess.run(argv, cwd=work, capture_output=True, text=True, check=True)
        with tarfile.open(Path(work) / result.stdout.strip().splitlines()[-1]) as archive:
            archive.extractall(work, filter="data")
        # Renamed into place last, so an interrupted fetch leaves no half a dist.
        (Path(work) / "package" / "dist").rename(dist)
    return dist


def app_config(dicomweb_root: str) -> str:
    """OHIF's window.config with one DICOMweb data source: the archive at `dicomweb_root`."""
    source = {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": "pacs",
        "configuration": {
            "friendlyName": "pacs",
            "name": "pacs",
            "qidoRoot": dicomweb_root,
            "wadoRoot": dicomweb_root,
            "wadoUriRoot": dicomweb_root,
            "qidoSupportsIncludeField": True,
            "supportsReject": False,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": False,
            "supportsWildcard": True,
            "omitQuotationForMultipartRequest": True,
        },
    }
    config = {
        "routerBasename": "/",
        "extensions": [],
        "modes": [],
        "showStudyList": True,
        "maxNumberOfWebWorkers": 2,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": False,
        "investigationalUseDialog": {"option": "never"},
        "defaultDataSourceName": "pacs",
        "dataSources": [source],
    }
    return f"window.config = {json.dumps(config, indent=2)};\n"


class ViewerSite:
    """The served viewer: its URL, and the archive its app-config.js points at."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.config_js = app_config("").encode()

    def point_at(self, dicomweb_root: str) -> None:
        """Take the DICOMweb base URL the viewer is to use (pages loaded from now on)."""
        self.config_js = app_config(dicomweb_root).encode()


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, site: ViewerSite, **kwargs: Any) -> None:
        self.site = site  # before the base class's __init__, which serves the request
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/app-config.js":
            self._send(self.site.config_js, "application/javascript")
            return
        if not (Path(self.directory) / path.lstrip("/")).is_file():
            self.path = "/index.html"
        super().do_GET()

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the viewer fetches about a hundred files."""


@contextmanager
def serve_viewer(dist: Path) -> Iterator[ViewerSite]:
    """Serve the viewer on a free loopback port (its URL is the origin the archive's CORS
    setting must allow); point it at an archive with `ViewerSite.point_at`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    site = ViewerSite(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = partial(_Handler, directory=str(dist), site=site)
    thread = threading.Thread(target=server.serve_forever, name="ohif-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


if __name__ == "__main__":
    print(fetch_dist())
