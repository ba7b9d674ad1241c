"""What the browser test needs beyond Python: Debian's chromium, the OHIF viewer's dist,
and a directory for its screenshots.

Outside CI a missing chromium or npm skips the test with the reason; .ci/run sets
PACS_BROWSER_TEST_REQUIRED=1, so there the same absence fails it.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.browser.ohif_site import dist_path, fetch_dist

REQUIRED_VARIABLE = "PACS_BROWSER_TEST_REQUIRED"
ARTIFACTS_VARIABLE = "PACS_TEST_ARTIFACTS"
ROOT = Path(__file__).resolve().parents[2]


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRED_VARIABLE) == "1":
        pytest.fail(f"{reason} ({REQUIRED_VARIABLE}=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the chromium binary: PACS_CHROMIUM, else chromium on PATH."""
    path = os.environ.get("PACS_CHROMIUM") or shutil.which("chromium")
    if path is None:
        _unavailable("chromium is not installed (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def ohif_dist() -> Path:
    if shutil.which("npm") is None and not (dist_path() / "index.html").is_file():
        _unavailable("npm is not installed: it fetches the OHIF viewer (@ohif/app)")
    return fetch_dist()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A directory kept after the run for this test's screenshots (test-artifacts/, or
    PACS_TEST_ARTIFACTS); its path is printed in the test's report."""
    root = Path(os.environ.get(ARTIFACTS_VARIABLE) or ROOT / "test-artifacts")
    directory = root / str(request.node.name)
    directory.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {directory}")
    return directory
