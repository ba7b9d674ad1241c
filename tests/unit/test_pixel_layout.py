"""Frames and bulk values read by the offsets the header walk notes equal pydicom's reading."""

import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_files
from pydicom.encaps import generate_frames

from pacs.dicom.frames import GEOMETRY, frame_ranges
from pacs.dicom.pixel_layout import layout_of_file, scanned_syntax
from pacs.errors import InvalidInstance

FILES = sorted(p for p in get_testdata_files() if Path(p).is_file())


def _readable(path: str) -> pydicom.Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
            frames = str(ds.get("NumberOfFrames") or 1)
        except Exception:
            return None
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or scanned_syntax(str(syntax)) is None or "PixelData" not in ds:
        return None
    if not frames.isdigit() or "BitsAllocated" not in ds:
        return None  # a malformed frame count, or pixel data without its image attributes
    try:
        with open(path, "rb") as fp:
            layout_of_file(fp)
    except InvalidInstance:
        return None  # refused at ingest: never stored
    return ds


WALKED = [p for p in FILES if _readable(p) is not None]


def _read(path: str, ranges: list[tuple[int, int]]) -> bytes:
    with open(path, "rb") as fp:
        parts = []
        for offset, length in ranges:
            fp.seek(offset)
            parts.append(fp.read(length))
    return b"".join(parts)


@pytest.mark.parametrize("path", WALKED, ids=[Path(p).name for p in WALKED])
def test_each_frame_read_by_offset_is_pydicoms_frame(path: str) -> None:
    ds = _readable(path)
    assert ds is not None
    with open(path, "rb") as fp:
        layout = layout_of_file(fp)
    assert layout is not None and layout["pixels"]["tag"] == 0x7FE00010
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = {keyword: ds.get(keyword) for keyword in GEOMETRY}
    frames = int(image["NumberOfFrames"] or 1)
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        if layout["pixels"]["frames"] is None:
            pytest.skip("frame boundaries not recorded for this file")
        expected = list(generate_frames(ds.PixelData, number_of_frames=frames))
    else:
        if ds.BitsAllocated == 1:
            pytest.skip("bit-packed frames do not start on byte boundaries")
        size = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
        if ds.PhotometricInterpretation == "YBR_FULL_422":
            size = size * 2 // 3  # two samples per pixel, Cb and Cr shared (PS3.3 C.7.6.3.1.2)
        expected = [ds.PixelData[i * size : (i + 1) * size] for i in range(frames)]
    got = [_read(path, frame_ranges(layout, n, image)) for n in range(1, frames + 1)]
    assert got == expected


def test_bulk_values_are_noted_with_their_offsets() -> None:
    [path] = [p for p in FILES if Path(p).name == "examples_overlay.dcm"]
    ds = pydicom.dcmread(path)
    with open(path, "rb") as fp:
        layout = layout_of_file(fp)
    assert layout is not None
    bulk = {tag: (vr, offset, length) for tag, vr, offset, length in layout["bulk"]}
    assert 0x60003000 in bulk  # Overlay Data
    vr, offset, length = bulk[0x60003000]
    assert vr == "OW" and _read(path, [(offset, length)]) == ds[0x60003000].value
