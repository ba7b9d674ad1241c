"""Driving the OHIF viewer in headless Chromium, and reading what its viewport shows.

Playwright is only the driver here: the browser is Debian's chromium, never one
Playwright downloads. Waits are on what the page does (a study row appears, Cornerstone
fires its image-rendered event after the frames arrived), never on time alone.
"""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.async_api import Browser, Page

# OHIF's first-visit tour would cover part of the viewport; mark it as seen. Cornerstone's
# events do not bubble, so they are counted in the capture phase: images drawn once a
# stack viewport has been given an image (the frame arrived and was decoded).
INIT_SCRIPT = """
localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']));
window.__newImages = 0;
window.__imagesRendered = 0;
document.addEventListener('CORNERSTONE_STACK_NEW_IMAGE', () => { window.__newImages++; }, true);
document.addEventListener('CORNERSTONE_IMAGE_RENDERED', () => {
  if (window.__newImages > 0) { window.__imagesRendered++; }
}, true);
"""
ROW_NAMES = (
    "Array.from(document.querySelectorAll('tbody > tr'))"
    ".filter(r => r.cells.length > 1).map(r => r.cells[0].innerText.trim())"
)
NAME_FILTER = '[data-cy="input-patientName"]'
# Mean grey levels (0-255) the bright square must exceed and the field around it must stay
# under, as drawn.
BRIGHT, DARK = 200.0, 40.0
VIEWPORT_SIZE = {"width": 1280, "height": 900}
TIMEOUT_MS = 60_000
CHROMIUM_ARGS = ["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader"]


async def new_page(browser: Browser) -> Page:
    page = await browser.new_page(viewport=VIEWPORT_SIZE)  # type: ignore[arg-type]
    page.set_default_timeout(TIMEOUT_MS)
    await page.add_init_script(INIT_SCRIPT)
    return page


async def open_study_list(page: Page, site: str) -> list[str]:
    """The patient names the study list shows once its first rows are in."""
    await page.goto(site + "/")
    await page.wait_for_function(f"({ROW_NAMES}).length > 0")
    names: list[str] = await page.evaluate(ROW_NAMES)
    return names


async def search_patient_name(page: Page, text: str, expected_rows: int) -> list[str]:
    """Type into the study list's patient name filter; the names shown once the search
    came back and the list holds `expected_rows` rows (or, failing that, at the timeout)."""
    async with page.expect_response(lambda r: _name_search(r.url) and r.ok):
        await page.locator(NAME_FILTER).fill(text)
    await page.wait_for_function(f"({ROW_NAMES}).length === {expected_rows}")
    names: list[str] = await page.evaluate(ROW_NAMES)
    return names


def _name_search(url: str) -> bool:
    query = url.partition("?")[2]
    return "/studies?" in url and ("PatientName=" in query or "00100010=" in query)


@dataclass(frozen=True, slots=True)
class ViewportShot:
    """What the viewport showed: its pixels (grey levels) and the frame requests made."""

    pixels: np.ndarray
    frames_requested: int


async def show_study(page: Page, site: str, study_uid: str, screenshot: Path) -> ViewportShot:
    """Open the viewer on one study, wait until an image is drawn after its frames
    arrived, save a screenshot of the page, and return the viewport's pixels."""
    frames: list[str] = []
    page.on("requestfinished", lambda r: frames.append(r.url) if "/frames/" in r.url else None)
    async with page.expect_response(lambda r: "/frames/" in r.url and r.ok):
        await page.goto(f"{site}/viewer?StudyInstanceUIDs={study_uid}")
    await page.wait_for_function("window.__imagesRendered > 0")
    # One more animation frame, so the drawn image has reached the compositor.
    await page.evaluate("new Promise(resolve => requestAnimationFrame(() => resolve(null)))")
    canvas = page.locator("canvas.cornerstone-canvas").first
    box = await canvas.bounding_box()
    assert box is not None, "the viewport canvas is not displayed"
    await page.screenshot(path=str(screenshot))
    clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": box["height"]}
    png = await page.screenshot(clip=clip)  # type: ignore[arg-type]
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    return ViewportShot(grey, len(frames))


def image_area(viewport: np.ndarray) -> np.ndarray:
    """The square the image is drawn in: the viewer fits it to the shorter side, centred."""
    height, width = viewport.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return viewport[top : top + side, left : left + side]


def square_contrast(
    viewport: np.ndarray, square: tuple[float, float, float, float], margin: float = 0.04
) -> tuple[float, float]:
    """Mean grey level inside the bright square and outside it, in the image area; a band
    of `margin` (fraction of the side) around the square's edge counts as neither."""
    area = image_area(viewport)
    side = area.shape[0]
    position = (np.arange(side) + 0.5) / side
    rows, columns = position[:, None], position[None, :]
    top, bottom, left, right = square
    inside = (
        (rows > top + margin)
        & (rows < bottom - margin)
        & (columns > left + margin)
        & (columns < right - margin)
    )
    outside = (
        (rows < top - margin)
        | (rows > bottom + margin)
        | (columns < left - margin)
        | (columns > right + margin)
    )
    return float(area[inside].mean()), float(area[outside].mean())
