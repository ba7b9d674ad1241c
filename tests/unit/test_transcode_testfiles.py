"""pydicom's test files in every compressed syntax pacs decodes convert to Explicit VR Little
Endian with the pixels an independent decoder gives (DCMTK's, or openjpeg where GDCM decodes
first): equal for lossless syntaxes, within one level for lossy ones."""

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from pydicom import dcmread
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    JPEG2000,
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from benchmarks.dcmtk import find as find_dcmtk
from pacs.codec.syntaxes import READABLE_AS_IS
from pacs.codec.transcode import ConversionFailed, ConversionUnavailable, can_convert
from pacs.net.contexts import storage_transfer_syntaxes
from tests.unit.test_transcode import bundled, convert_file, parse, store

OPENJPEG = "openjpeg"  # pydicom's pylibjpeg plugin: GDCM, tried first, is what pacs decodes with
DECODER_FOR: dict[str, str] = {
    JPEGBaseline8Bit: "dcmdjpeg",
    JPEGExtended12Bit: "dcmdjpeg",
    JPEGLossless: "dcmdjpeg",
    JPEGLosslessSV1: "dcmdjpeg",
    JPEGLSLossless: "dcmdjpls",
    JPEGLSNearLossless: "dcmdjpls",
    JPEG2000Lossless: OPENJPEG,
    JPEG2000: OPENJPEG,
    RLELossless: "dcmdrle",
}
LOSSY = {JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000}


@dataclass(frozen=True)
class Case:
    name: str
    syntax: str
    made_with: tuple[str, ...] = ()  # dcmcjpeg options making it from the uncompressed `name`

    @property
    def tolerance(self) -> int:
        return 1 if self.syntax in LOSSY else 0


CASES = [
    Case("693_J2KI.dcm", JPEG2000),
    Case("GDCMJ2K_TextGBR.dcm", JPEG2000Lossless),
    Case("J2K_pixelrep_mismatch.dcm", JPEG2000Lossless),  # codestream unsigned, pixels signed
    Case("JPEG-lossy.dcm", JPEGExtended12Bit),
    Case("JPGExtended.dcm", JPEGExtended12Bit),
    Case("JPEG2000.dcm", JPEG2000),
    Case("JPEGLSNearLossless_08.dcm", JPEGLSNearLossless),
    Case("JPEGLSNearLossless_16.dcm", JPEGLSNearLossless),
    Case("MR_small_RLE.dcm", RLELossless),
    Case("MR_small_jp2klossless.dcm", JPEG2000Lossless),
    Case("MR_small_jpeg_ls_lossless.dcm", JPEGLSLossless),
    Case("SC_jpeg_no_color_transform.dcm", JPEGBaseline8Bit),
    Case("SC_jpeg_no_color_transform_2.dcm", JPEGBaseline8Bit),
    Case("SC_rgb_dcmtk_+eb+cr.dcm", JPEGBaseline8Bit),
    Case("SC_rgb_dcmtk_+eb+cy+n1.dcm", JPEGBaseline8Bit),
    Case("SC_rgb_dcmtk_+eb+cy+n2.dcm", JPEGBaseline8Bit),
    Case("SC_rgb_dcmtk_+eb+cy+np.dcm", JPEGBaseline8Bit),
    Case("SC_rgb_dcmtk_+eb+cy+s2.dcm", JPEGBaseline8Bit),
    Case("SC_rgb_dcmtk_+eb+cy+s4.dcm", JPEGBaseline8Bit),
    Case("SC_rgb_gdcm_KY.dcm", JPEG2000),
    Case("SC_rgb_jls_lossy_line.dcm", JPEGLSNearLossless),
    Case("SC_rgb_jls_lossy_sample.dcm", JPEGLSNearLossless),
    Case("SC_rgb_jpeg_app14_dcmd.dcm", JPEGBaseline8Bit),
    Case("SC_rgb_jpeg_dcmtk.dcm", JPEGBaseline8Bit),
    Case("SC_rgb_jpeg_gdcm.dcm", JPEGLosslessSV1),
    Case("SC_rgb_jpeg_lossy_gdcm.dcm", JPEGBaseline8Bit),
    Case("SC_rgb_rle.dcm", RLELossless),
    Case("SC_rgb_rle_16bit.dcm", RLELossless),
    Case("SC_rgb_rle_16bit_2frame.dcm", RLELossless),
    Case("SC_rgb_rle_2frame.dcm", RLELossless),
    Case("SC_rgb_rle_32bit.dcm", RLELossless),
    Case("SC_rgb_rle_32bit_2frame.dcm", RLELossless),
    Case("SC_rgb_small_odd_jpeg.dcm", JPEGBaseline8Bit),
    Case("examples_jpeg2k.dcm", JPEG2000Lossless),
    Case("examples_ybr_color.dcm", JPEGBaseline8Bit),
    Case("rtdose_rle.dcm", RLELossless),
    Case("rtdose_rle_1frame.dcm", RLELossless),
    # No bundled file is in JPEG Lossless Process 14 or 8-bit colour JPEG Extended: DCMTK makes one.
    Case("MR_small.dcm", JPEGLossless, made_with=("+el",)),
    Case("examples_rgb_color.dcm", JPEGExtended12Bit, made_with=("+ee",)),
    Case("CT_small.dcm", JPEGExtended12Bit, made_with=("+ee",)),
]


def dcmtk(name: str, *args: str) -> None:
    tool = find_dcmtk(name)
    if tool is None:
        pytest.skip(f"DCMTK's {name} is not installed (apt-get install dcmtk)")
    subprocess.run([tool, *args], check=True, capture_output=True)


def source_file(case: Case, directory: Path) -> Path:
    path = bundled(case.name)
    if case.made_with:
        made = directory / f"made-{case.name}"
        dcmtk("dcmcjpeg", *case.made_with, str(path), str(made))
        path = made
    assert dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == case.syntax
    return path


def reference(case: Case, path: Path, directory: Path) -> tuple[NDArray[np.generic], str]:
    """The pixels and Photometric Interpretation an independent decoder gives for `path`."""
    tool = DECODER_FOR[case.syntax]
    if tool == OPENJPEG:
        arr, properties = get_decoder(case.syntax).as_array(
            dcmread(path), decoding_plugin="pylibjpeg"
        )
        return arr, str(properties["photometric_interpretation"])
    decoded = directory / f"reference-{case.name}"
    dcmtk(tool, str(path), str(decoded))
    ds = dcmread(decoded)
    return ds.pixel_array, str(ds.PhotometricInterpretation)


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{UID(case.syntax).name}-{case.name}")
def test_converts_to_the_pixels_an_independent_decoder_gives(tmp_path: Path, case: Case) -> None:
    path = source_file(case, tmp_path)
    source = dcmread(path, stop_before_pixels=True)
    expected, photometric = reference(case, path, tmp_path)

    assert can_convert(case.syntax, ExplicitVRLittleEndian)
    converted = parse(convert_file(path, ExplicitVRLittleEndian), ExplicitVRLittleEndian)

    arr = converted.pixel_array
    assert arr.shape == expected.shape
    assert np.abs(arr.astype(np.int64) - expected.astype(np.int64)).max() <= case.tolerance
    assert converted.PhotometricInterpretation == photometric
    assert converted.BitsAllocated == source.BitsAllocated
    assert converted.BitsStored == source.BitsStored
    assert converted.PixelRepresentation == source.PixelRepresentation
    assert converted.SOPInstanceUID == source.SOPInstanceUID
    if case.syntax in {JPEGBaseline8Bit, JPEGExtended12Bit}:
        assert converted.LossyImageCompression == "01"


def test_signed_pixels_from_an_unsigned_codestream_keep_their_sign() -> None:
    path = bundled("J2K_pixelrep_mismatch.dcm")

    converted = parse(convert_file(path, ExplicitVRLittleEndian), ExplicitVRLittleEndian)

    assert converted.pixel_array.min() == -2000  # pydicom's documented value for this file


def test_can_convert_claims_exactly_the_compressed_syntaxes_tested_here() -> None:
    accepted = {UID(ts) for ts in storage_transfer_syntaxes()} - READABLE_AS_IS
    tested = {case.syntax for case in CASES}

    assert tested <= accepted
    claimed = {ts for ts in accepted if can_convert(ts, ExplicitVRLittleEndian)}
    assert claimed == tested


def test_undecodable_codestream_fails_cleanly() -> None:
    path = bundled("JPEG2000-embedded-sequence-delimiter.dcm")  # no decoder reads its header

    with pytest.raises(ConversionFailed, match="decoding JPEG 2000 Image Compression"):
        convert_file(path, ExplicitVRLittleEndian)


def test_decoder_errors_are_logged_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    path = bundled("JPEG2000-embedded-sequence-delimiter.dcm")
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ConversionFailed):
        convert_file(path, ExplicitVRLittleEndian)

    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    debug = [r for r in caplog.records if r.name == "pacs.codec.library_logs"]
    assert debug
    assert all(r.levelno == logging.DEBUG and r.exc_info for r in debug)
    assert "failed to read the header" in caplog.text


def test_decoder_errors_outside_a_conversion_are_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A conversion first, so the filter is installed.
    convert_file(bundled("MR_small_RLE.dcm"), ExplicitVRLittleEndian)

    logging.getLogger("pydicom.pixels.decoders.base").error("not during a conversion")

    assert [r.levelno for r in caplog.records if r.message == "not during a conversion"] == [
        logging.ERROR
    ]


def test_twelve_bit_colour_jpeg_is_unavailable(tmp_path: Path) -> None:
    ds = dcmread(bundled("JPGExtended.dcm"))
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PlanarConfiguration = 0
    path = store(tmp_path, ds, JPEGExtended12Bit)

    with pytest.raises(ConversionUnavailable, match="only as monochrome"):
        convert_file(path, ExplicitVRLittleEndian)


def test_data_set_encoded_implicit_under_an_explicit_syntax_converts() -> None:
    path = bundled("SC_rgb_jpeg.dcm")  # its File Meta Information says Explicit VR Little Endian

    with pytest.warns(UserWarning, match="found implicit VR"):
        source = dcmread(path)
        converted = parse(convert_file(path, ExplicitVRLittleEndian), ExplicitVRLittleEndian)

    assert np.array_equal(converted.pixel_array, source.pixel_array)
    assert converted.ImageType == source.ImageType
