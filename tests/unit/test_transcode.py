"""Converting stored Part 10 files: lossless round-trips, lossy flags kept truthful, refusals."""

import zlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import (
    JPEG2000,
    MPEG2MPML,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from pacs.codec.transcode import ConversionFailed, ConversionUnavailable, can_convert, convert
from pacs.dicom.part10 import file_meta_bytes, seek_data_set
from tests.conftest import make_instance

UNCOMPRESSED = [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian]


@dataclass(frozen=True)
class Kind:
    name: str
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool


KINDS = [
    Kind("grey8", 1, 1, 8, 8, signed=False),
    Kind("grey16", 1, 1, 16, 12, signed=False),
    Kind("rgb8", 1, 3, 8, 8, signed=False),
    Kind("frames16", 3, 1, 16, 16, signed=True),
]
GREY8, GREY16, RGB8, FRAMES16 = KINDS


def pixels(kind: Kind) -> NDArray[np.generic]:
    """A gradient with noise over the whole range of Bits Stored, 40 rows by 56 columns."""
    rng = np.random.default_rng(0)
    shape = (kind.frames, 40, 56, kind.samples)
    low = -(2 ** (kind.bits_stored - 1)) if kind.signed else 0
    high = low + 2**kind.bits_stored - 1
    ramp = np.linspace(low, high, num=int(np.prod(shape))).reshape(shape)
    noisy = np.clip(ramp + rng.integers(-300, 300, size=shape), low, high)
    dtype = f"{'i' if kind.signed else 'u'}{kind.bits_allocated // 8}"
    return noisy.astype(dtype).reshape(tuple(n for n in shape if n > 1))


def image(kind: Kind, arr: NDArray[np.generic]) -> Dataset:
    ds = make_instance(
        Rows=40,
        Columns=56,
        SamplesPerPixel=kind.samples,
        PhotometricInterpretation="RGB" if kind.samples == 3 else "MONOCHROME2",
        BitsAllocated=kind.bits_allocated,
        BitsStored=kind.bits_stored,
        HighBit=kind.bits_stored - 1,
        PixelRepresentation=int(kind.signed),
        SmallestImagePixelValue=int(arr.min()),  # US or SS: its VR follows the pixels
        PixelData=arr.tobytes(),
    )
    if kind.samples == 3:
        ds.PlanarConfiguration = 0
    if kind.frames > 1:
        ds.NumberOfFrames = kind.frames
    return ds


def encode(ds: Dataset, transfer_syntax: str) -> bytes:
    """The data set as a sender would put it on the wire in `transfer_syntax`."""
    uid = UID(transfer_syntax)
    if uid == ExplicitVRBigEndian and ds.BitsAllocated > 8:
        arr = np.frombuffer(ds.PixelData, dtype=f"<u{ds.BitsAllocated // 8}")
        ds.PixelData = arr.byteswap().tobytes()
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = uid.is_implicit_VR
    buffer.is_little_endian = uid.is_little_endian
    write_dataset(buffer, ds)
    if uid == DeflatedExplicitVRLittleEndian:
        deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return deflate.compress(buffer.getvalue()) + deflate.flush()
    return buffer.getvalue()


def store(directory: Path, ds: Dataset, transfer_syntax: str) -> Path:
    """Write `ds` the way ingest stores it: our File Meta Information, then the data set."""
    path = directory / f"{ds.SOPInstanceUID}.dcm"
    meta = file_meta_bytes(ds.SOPClassUID, ds.SOPInstanceUID, transfer_syntax, "STORESCU")
    path.write_bytes(meta + encode(ds, transfer_syntax))
    return path


def convert_file(path: Path, target_ts: str) -> bytes:
    """The stored file at `path` converted, read the way retrieve reads a blob."""
    with path.open("rb") as part10:
        return convert(part10, target_ts)


def seek_data_set_of(path: Path) -> tuple[str, int]:
    with path.open("rb") as part10:
        return seek_data_set(part10)


def parse(data_set: bytes, transfer_syntax: str) -> Dataset:
    """A converted data set read back behind File Meta Information naming its new syntax."""
    meta = file_meta_bytes("1.2.3", "1.2.3.4", transfer_syntax, "")
    return dcmread(BytesIO(meta + data_set))


def stored(tmp_path: Path, kind: Kind, transfer_syntax: str) -> tuple[Path, NDArray[np.generic]]:
    arr = pixels(kind)
    ds = image(kind, arr)
    if UID(transfer_syntax).is_compressed:
        ds.compress(transfer_syntax, arr)
    return store(tmp_path, ds, transfer_syntax), arr


def bundled(name: str) -> Path:
    """A file bundled inside pydicom's wheel (pydicom-data, which downloads, is not used)."""
    path = get_testdata_file(name)
    assert isinstance(path, str), f"{name} is not bundled with this pydicom"
    return Path(path)


def assert_same_image(converted: Dataset, kind: Kind, arr: NDArray[np.generic]) -> None:
    assert np.array_equal(converted.pixel_array, arr)
    assert converted.BitsAllocated == kind.bits_allocated
    assert converted.BitsStored == kind.bits_stored
    assert converted.SmallestImagePixelValue == arr.min()
    assert converted.get("NumberOfFrames", 1) == kind.frames
    assert converted.get("LossyImageCompression", "00") == "00"
    if kind.samples == 3:
        assert converted.PhotometricInterpretation == "RGB"
        assert converted.PlanarConfiguration == 0


def test_seek_data_set_finds_the_stored_syntax_and_where_the_data_set_starts(
    tmp_path: Path,
) -> None:
    ds = image(GREY8, pixels(GREY8))
    meta = file_meta_bytes(ds.SOPClassUID, ds.SOPInstanceUID, RLELossless, "STORESCU")
    ds.compress(RLELossless)
    data_set = encode(ds, RLELossless)
    path = tmp_path / "stored.dcm"
    path.write_bytes(meta + data_set)

    assert seek_data_set_of(path) == (RLELossless, len(meta))
    assert path.read_bytes()[len(meta) :] == data_set


def test_seek_data_set_rejects_a_file_without_file_meta_information(tmp_path: Path) -> None:
    path = tmp_path / "bare.dcm"
    path.write_bytes(encode(image(GREY8, pixels(GREY8)), ExplicitVRLittleEndian))

    with pytest.raises(ValueError, match="Part 10"):
        seek_data_set_of(path)


@pytest.mark.parametrize("target", UNCOMPRESSED, ids=lambda uid: uid.name)
@pytest.mark.parametrize("source", [RLELossless, JPEG2000Lossless], ids=["rle", "j2k"])
@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_lossless_source_decodes_pixel_for_pixel(
    tmp_path: Path, kind: Kind, source: str, target: str
) -> None:
    path, arr = stored(tmp_path, kind, source)

    converted = parse(convert_file(path, target), target)

    assert_same_image(converted, kind, arr)
    assert converted.SOPInstanceUID == path.stem


@pytest.mark.parametrize("target", UNCOMPRESSED, ids=lambda uid: uid.name)
@pytest.mark.parametrize(
    "source", [*UNCOMPRESSED, DeflatedExplicitVRLittleEndian], ids=lambda uid: uid.name
)
@pytest.mark.parametrize("kind", [GREY8, FRAMES16], ids=lambda kind: kind.name)
def test_uncompressed_syntaxes_convert_into_each_other(
    tmp_path: Path, kind: Kind, source: str, target: str
) -> None:
    path, arr = stored(tmp_path, kind, source)

    assert_same_image(parse(convert_file(path, target), target), kind, arr)


@pytest.mark.parametrize(
    ("compressed", "reference"),
    [
        ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm"),  # JPEG Lossless SV1 (GDCM) against RLE
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),  # JPEG-LS against uncompressed
    ],
)
def test_jpeg_lossless_files_decode_to_their_reference_pixels(
    compressed: str, reference: str
) -> None:
    path = bundled(compressed)
    expected = dcmread(bundled(reference)).pixel_array

    converted = parse(convert_file(path, ExplicitVRLittleEndian), ExplicitVRLittleEndian)

    assert np.array_equal(converted.pixel_array, expected)
    assert "LossyImageCompression" not in converted


def lossy_jpeg(tmp_path: Path, *, drop_history: bool) -> tuple[Path, Dataset]:
    """DCMTK's YBR_FULL_422 baseline JPEG, optionally without its Lossy Image Compression record."""
    source = dcmread(bundled("SC_rgb_dcmtk_+eb+cy+np.dcm"))
    if drop_history:
        for keyword in (
            "LossyImageCompression",
            "LossyImageCompressionRatio",
            "LossyImageCompressionMethod",
        ):
            delattr(source, keyword)
    return store(tmp_path, source, JPEGBaseline8Bit), source


def test_lossy_jpeg_becomes_rgb_and_records_its_lossy_compression(tmp_path: Path) -> None:
    path, source = lossy_jpeg(tmp_path, drop_history=True)
    compressed_size = len(source.PixelData)

    converted = parse(convert_file(path, ExplicitVRLittleEndian), ExplicitVRLittleEndian)

    assert converted.PhotometricInterpretation == "RGB"
    assert converted.PlanarConfiguration == 0
    assert len(converted.PixelData) == 100 * 100 * 3
    assert np.array_equal(converted.pixel_array, source.pixel_array)
    assert converted.LossyImageCompression == "01"
    assert converted.LossyImageCompressionMethod == "ISO_10918_1"
    assert float(converted.LossyImageCompressionRatio) == pytest.approx(
        30000 / compressed_size, abs=0.01
    )


def test_lossy_compression_already_recorded_is_kept_as_it_is(tmp_path: Path) -> None:
    path, source = lossy_jpeg(tmp_path, drop_history=False)

    converted = parse(convert_file(path, ImplicitVRLittleEndian), ImplicitVRLittleEndian)

    assert converted.LossyImageCompression == "01"
    assert converted.LossyImageCompressionMethod == source.LossyImageCompressionMethod
    assert converted.LossyImageCompressionRatio == source.LossyImageCompressionRatio


@pytest.mark.parametrize(
    ("stated", "recorded", "method"), [("00", "00", None), (None, "01", "ISO_15444_1")]
)
def test_jpeg_2000_is_lossy_unless_the_data_set_states_otherwise(
    tmp_path: Path, stated: str | None, recorded: str, method: str | None
) -> None:
    arr = pixels(GREY16)
    ds = image(GREY16, arr)
    ds.compress(JPEG2000Lossless, arr)  # reversible, but stored under the lossy-capable syntax
    if stated is not None:
        ds.LossyImageCompression = stated
    path = store(tmp_path, ds, JPEG2000)

    converted = parse(convert_file(path, ExplicitVRLittleEndian), ExplicitVRLittleEndian)

    assert np.array_equal(converted.pixel_array, arr)
    assert converted.LossyImageCompression == recorded
    assert converted.get("LossyImageCompressionMethod") == method


def test_same_syntax_returns_the_stored_data_set_bytes(tmp_path: Path) -> None:
    path, _ = stored(tmp_path, RGB8, RLELossless)
    _, offset = seek_data_set_of(path)

    assert convert_file(path, RLELossless) == path.read_bytes()[offset:]


def test_compressed_icon_is_dropped_with_the_image_decoded(tmp_path: Path) -> None:
    arr = pixels(GREY8)
    ds = image(GREY8, arr)
    icon = image(GREY8, arr)  # a full-size "icon": what matters is its encapsulation
    icon.compress(RLELossless, arr)
    del icon.file_meta
    ds.IconImageSequence = [icon]
    ds.compress(RLELossless, arr)
    path = store(tmp_path, ds, RLELossless)

    converted = parse(convert_file(path, ExplicitVRLittleEndian), ExplicitVRLittleEndian)

    assert "IconImageSequence" not in converted
    assert np.array_equal(converted.pixel_array, arr)


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (ExplicitVRLittleEndian, ExplicitVRLittleEndian, True),
        (JPEG2000Lossless, JPEG2000Lossless, True),
        ("1.2.3.4", "1.2.3.4", True),
        (ImplicitVRLittleEndian, ExplicitVRBigEndian, True),
        (ExplicitVRBigEndian, ImplicitVRLittleEndian, True),
        (DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, True),
        (RLELossless, ImplicitVRLittleEndian, True),
        (JPEG2000Lossless, ExplicitVRLittleEndian, True),
        (JPEG2000, ExplicitVRBigEndian, True),
        (JPEGLSLossless, ExplicitVRLittleEndian, True),
        (JPEGLosslessSV1, ExplicitVRLittleEndian, True),
        (JPEGBaseline8Bit, ImplicitVRLittleEndian, True),
        (ExplicitVRLittleEndian, RLELossless, False),
        (ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, False),
        (JPEGBaseline8Bit, JPEG2000Lossless, False),
        (MPEG2MPML, ExplicitVRLittleEndian, False),
        ("1.2.3.4", ExplicitVRLittleEndian, False),
    ],
)
def test_can_convert(source: str, target: str, expected: bool) -> None:
    assert can_convert(source, target) is expected


def test_compressed_target_is_unavailable(tmp_path: Path) -> None:
    path, _ = stored(tmp_path, GREY8, ExplicitVRLittleEndian)

    with pytest.raises(ConversionUnavailable, match="only uncompressed"):
        convert_file(path, JPEG2000Lossless)


def test_syntax_without_any_decoder_is_unavailable(tmp_path: Path) -> None:
    ds = image(GREY8, pixels(GREY8))
    path = tmp_path / "video.dcm"
    meta = file_meta_bytes(ds.SOPClassUID, ds.SOPInstanceUID, MPEG2MPML, "STORESCU")
    path.write_bytes(meta + encode(ds, ExplicitVRLittleEndian))

    with pytest.raises(ConversionUnavailable, match="no decoder exists for MPEG2 Main Profile"):
        convert_file(path, ExplicitVRLittleEndian)


def test_missing_decoder_package_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = stored(tmp_path, GREY16, RLELossless)
    needs = ["pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-rle>=2.0"]
    monkeypatch.setattr(Decoder, "is_available", property(lambda decoder: False))
    monkeypatch.setattr(Decoder, "missing_dependencies", property(lambda decoder: needs))

    assert not can_convert(RLELossless, ExplicitVRLittleEndian)
    with pytest.raises(ConversionUnavailable) as raised:
        convert_file(path, ExplicitVRLittleEndian)
    assert str(raised.value) == (
        "no decoder for RLE Lossless is installed; "
        "install one of: pylibjpeg>=2.0 and pylibjpeg-rle>=2.0"
    )


def test_damaged_codestream_fails_with_the_decoder_reason(tmp_path: Path) -> None:
    arr = pixels(GREY16)
    ds = image(GREY16, arr)
    ds.compress(JPEG2000Lossless, arr)
    encapsulated = bytearray(ds.PixelData)
    encapsulated[16:] = bytes(len(encapsulated) - 16)  # keep the item tags, zero the codestream
    ds.PixelData = bytes(encapsulated)
    path = store(tmp_path, ds, JPEG2000Lossless)

    with pytest.raises(ConversionFailed, match="decoding JPEG 2000"):
        convert_file(path, ExplicitVRLittleEndian)
