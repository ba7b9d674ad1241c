"""The screenshot check of the browser test tells the expected image from a blank
viewport, noise, and the other study's image (no browser needed)."""

import numpy as np

from tests.browser.images import CT_SQUARE, J2K_SQUARE
from tests.browser.viewer import BRIGHT, DARK, square_contrast

HEIGHT, WIDTH = 842, 955  # the viewport canvas at the test's window size


def _drawn(square: tuple[float, float, float, float]) -> np.ndarray:
    """A viewport as the viewer draws an image: fitted to the height, centred, black around."""
    viewport = np.zeros((HEIGHT, WIDTH))
    left = (WIDTH - HEIGHT) // 2
    top, bottom, first, last = (round(edge * HEIGHT) for edge in square)
    viewport[top:bottom, left + first : left + last] = 255.0
    return viewport


def _passes(viewport: np.ndarray, square: tuple[float, float, float, float]) -> bool:
    inside, outside = square_contrast(viewport, square)
    return inside > BRIGHT and outside < DARK


def test_each_study_image_passes_for_its_own_square_only() -> None:
    assert _passes(_drawn(CT_SQUARE), CT_SQUARE)
    assert _passes(_drawn(J2K_SQUARE), J2K_SQUARE)
    assert not _passes(_drawn(CT_SQUARE), J2K_SQUARE)
    assert not _passes(_drawn(J2K_SQUARE), CT_SQUARE)


def test_blank_white_and_noisy_viewports_fail() -> None:
    noise = np.random.default_rng(5).uniform(0, 255, (HEIGHT, WIDTH))
    for viewport in (np.zeros((HEIGHT, WIDTH)), np.full((HEIGHT, WIDTH), 255.0), noise):
        assert not _passes(viewport, CT_SQUARE)
        assert not _passes(viewport, J2K_SQUARE)
