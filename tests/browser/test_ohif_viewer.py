"""The OHIF viewer, in headless Chromium, on pacs's DICOMweb: the study list, a name
search, and a CT and a JPEG 2000 series drawn with the pixels they hold.

pacs runs as `pacs serve` with [web] on a loopback port and the viewer's origin in
cors_origins (the viewer is served from another port); the studies arrive over C-STORE.
The screenshots are kept (see the `artifacts` fixture).
"""

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright
from pydicom.dataset import Dataset
from pynetdicom import AE

from tests.browser.images import Study, ct_study, jpeg2000_study
from tests.browser.ohif_site import ViewerSite, serve_viewer
from tests.browser.viewer import (
    BRIGHT,
    CHROMIUM_ARGS,
    DARK,
    new_page,
    open_study_list,
    search_patient_name,
    show_study,
    square_contrast,
)
from tests.integration.conftest import write_config
from tests.integration.serve_process import ServeProcess, start_serve

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
WEB_URL = re.compile(r"DICOMweb at (http://\S+?)[ ,]")


def _send(host: str, port: int, instances: list[Dataset]) -> list[int]:
    """C-STORE each instance in its own transfer syntax (JPEG 2000 stays compressed)."""
    ae = AE(ae_title="MODALITY")
    for ds in instances:
        ae.add_requested_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])
    assoc = ae.associate(host, port, ae_title="PACS")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in instances]
    finally:
        assoc.release()


@pytest.fixture
def viewer(ohif_dist: Path) -> Iterator[ViewerSite]:
    with serve_viewer(ohif_dist) as site:
        yield site


@pytest.fixture
async def pacs(tmp_path: Path, viewer: ViewerSite) -> AsyncIterator[tuple[ServeProcess, str]]:
    """`pacs serve` with DICOMweb on a free loopback port, allowing the viewer's origin
    (CORS); yields it and its DICOMweb base URL."""
    config = write_config(
        tmp_path,
        storage={"min_free_bytes": 0},
        web={"host": "127.0.0.1", "port": 0, "cors_origins": [viewer.url]},
    )
    served = await start_serve(config)
    try:
        await served.wait_listening()
        line = await served.wait_for_line("DICOMweb at ")
        match = WEB_URL.search(line + " ")
        assert match, line
        yield served, match[1]
    finally:
        await served.stop()


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def test_the_viewer_lists_the_studies_and_draws_ct_and_jpeg2000_pixels(
    viewer: ViewerSite, pacs: tuple[ServeProcess, str], browser: Browser, artifacts: Path
) -> None:
    served, dicomweb = pacs
    studies: list[Study] = [ct_study(), jpeg2000_study()]
    for study in studies:
        assert _send(served.host, served.port, study.instances) == [0] * len(study.instances)
    viewer.point_at(dicomweb)

    page = await new_page(browser)
    listed = await open_study_list(page, viewer.url)
    searched = await search_patient_name(page, "J2K", expected_rows=1)
    await page.screenshot(path=str(artifacts / "study-list.png"))
    await page.close()
    shots = {}
    for study in studies:
        page = await new_page(browser)
        screenshot = artifacts / f"{study.description.lower().replace(' ', '-')}.png"
        shots[study.uid] = await show_study(page, viewer.url, study.uid, screenshot)
        await page.close()

    assert sorted(listed) == ["BROWSER, CT", "BROWSER, J2K"]
    assert searched == ["BROWSER, J2K"]
    for study in studies:
        shot = shots[study.uid]
        inside, outside = square_contrast(shot.pixels, study.square)
        assert shot.frames_requested >= 1, study.description
        assert inside > BRIGHT and outside < DARK, (study.description, inside, outside)
