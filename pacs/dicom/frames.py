"""Which bytes of a stored file hold one frame, from its pixel layout and image attributes.

A native frame is `Rows x Columns x SamplesPerPixel x BitsAllocated / 8` bytes at a
fixed stride from the start of the pixel data (PS3.5 8.1.1); an encapsulated frame is
its fragments' values, as the layout noted them (PS3.5 A.4). Nothing here reads a file.
"""

from collections.abc import Mapping
from typing import Any

from pacs.dicom.pixel_layout import Layout
from pacs.errors import ResourceNotFound, TransferUnavailable

GEOMETRY = {
    "Rows": "00280010",
    "Columns": "00280011",
    "SamplesPerPixel": "00280002",
    "BitsAllocated": "00280100",
    "NumberOfFrames": "00280008",
    "PhotometricInterpretation": "00280004",
}


class FrameUnavailable(TransferUnavailable):
    """A frame whose bytes cannot be told apart from its neighbours' in the file."""


class NoSuchFrame(ResourceNotFound):
    """A frame number outside 1..NumberOfFrames, or an instance without pixel data."""


def geometry(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The image attributes that size a frame, read from a level's DICOM JSON (0 if absent)."""
    found: dict[str, Any] = {}
    for keyword, key in GEOMETRY.items():
        values = (attributes.get(key) or {}).get("Value") or [None]
        if keyword == "PhotometricInterpretation":
            found[keyword] = str(values[0] or "")
            continue
        try:
            found[keyword] = int(values[0] or 0)
        except (TypeError, ValueError):
            found[keyword] = 0
    return found


def frame_count(layout: Layout, image: Mapping[str, Any]) -> int:
    """How many frames the instance has (0 without pixel data)."""
    pixels = layout.get("pixels")
    if pixels is None:
        return 0
    if pixels.get("frames") is not None:
        return len(pixels["frames"])
    return max(int(image.get("NumberOfFrames") or 1), 1)


def frame_ranges(layout: Layout, number: int, image: Mapping[str, Any]) -> list[tuple[int, int]]:
    """The (offset, length) file ranges of frame `number` (from 1), in order."""
    pixels = layout.get("pixels")
    count = frame_count(layout, image)
    if pixels is None or not 1 <= number <= count:
        raise NoSuchFrame(f"frame {number} does not exist: the instance has {count}")
    if "frames" in pixels:
        frames = pixels["frames"]
        if frames is None:
            raise FrameUnavailable("the fragments of its frames could not be told apart")
        return [(int(offset), int(length)) for offset, length in frames[number - 1]]
    bits = int(image.get("BitsAllocated") or 0)
    size = int(image.get("Rows") or 0) * int(image.get("Columns") or 0)
    size *= int(image.get("SamplesPerPixel") or 1) * bits
    if bits % 8 or not size:
        if count == 1:
            return [(int(pixels["offset"]), int(pixels["length"]))]
        raise FrameUnavailable("its frames do not start on byte boundaries (BitsAllocated 1)")
    size //= 8
    if image.get("PhotometricInterpretation") == "YBR_FULL_422":
        size = size * 2 // 3  # two samples per pixel: Cb and Cr shared (PS3.3 C.7.6.3.1.2)
    start = int(pixels["offset"]) + (number - 1) * size
    if (number - 1) * size + size > int(pixels["length"]):
        raise FrameUnavailable(f"frame {number} runs past the end of its pixel data")
    return [(start, size)]
