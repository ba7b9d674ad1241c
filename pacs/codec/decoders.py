"""Backend: decompress Pixel Data with pydicom's decoders (GDCM, pylibjpeg, openjpeg, RLE)."""

import logging
import warnings
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.base import Decoder, get_decoder
from pydicom.pixels.utils import get_expected_length
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, ExplicitVRLittleEndian
from pydicom.valuerep import VR

from pacs.codec import gdcm_jpeg
from pacs.codec.errors import ConversionFailed, ConversionUnavailable
from pacs.codec.library_logs import library_errors_at_debug
from pacs.codec.syntaxes import ALWAYS_LOSSY, DECODED, describe

log = logging.getLogger(__name__)

ICON_IMAGE_SEQUENCE = Tag(0x0088, 0x0200)


def is_available(transfer_syntax: str) -> bool:
    """Whether Pixel Data in this transfer syntax is decoded here, by a tested, installed plugin."""
    decoder = _decoder(transfer_syntax)
    return transfer_syntax in DECODED and decoder is not None and decoder.is_available


def why_unavailable(transfer_syntax: str) -> str:
    """Why this transfer syntax cannot be decoded here, naming what would make it possible."""
    name = describe(transfer_syntax)
    decoder = _decoder(transfer_syntax)
    if decoder is None:
        return f"no decoder exists for {name}"
    if transfer_syntax not in DECODED:
        return f"decoding {name} is not supported: no test here shows its decoder right"
    needs = [need.partition(" - requires ")[2] for need in decoder.missing_dependencies]
    if not any(needs):
        return f"no decoder for {name} is usable here"
    return f"no decoder for {name} is installed; install one of: {'; '.join(needs)}"


def decompress(ds: Dataset, transfer_syntax: str) -> int:
    """Decode `ds`'s Pixel Data in place to native little endian; return the compressed size.

    Colour from lossy JPEG comes out RGB, converted within the lossy decode as
    DCMTK's dcmdjpeg does by default; every other syntax keeps its samples
    exactly (YBR_FULL stays YBR_FULL), so a lossless source stays bit-exact.
    JPEG 2000's reversible/irreversible colour transforms are undone by the
    codec itself, leaving RGB. Photometric Interpretation, Planar
    Configuration (0) and Number of Frames are set to match the decoded bytes.
    """
    compressed_size = len(ds.PixelData)
    with library_errors_at_debug():
        if gdcm_jpeg.handles(ds, transfer_syntax):
            pixels, photometric, frames = gdcm_jpeg.decode(ds), str(ds.PhotometricInterpretation), 0
        else:
            pixels, photometric, frames = _decode_with_pydicom(ds, transfer_syntax)
    _set_native_pixel_data(ds, pixels, photometric, frames)
    expected = get_expected_length(ds, "bytes")
    if len(ds.PixelData) not in (expected, expected + 1):
        raise ConversionFailed(
            f"decoded {describe(transfer_syntax)} Pixel Data has {len(ds.PixelData)} bytes, "
            f"but its Image Pixel attributes describe {expected}"
        )
    _drop_encapsulated_icons(ds)
    return compressed_size


def decode_frame(image: Dataset, encoded: bytes, transfer_syntax: str) -> bytes:
    """One frame's encoded bytes decoded, in the cells `image` (its Image Pixel attributes)
    describes: the frame alone is decoded, whatever the instance's other frames.

    `image` is changed: it gets the frame as its Pixel Data. Raises ConversionUnavailable.
    """
    if not is_available(transfer_syntax):
        raise ConversionUnavailable(why_unavailable(transfer_syntax))
    image.NumberOfFrames = 1
    image.PixelData = encapsulate([encoded])
    image["PixelData"].VR = VR.OB
    image.file_meta = FileMetaDataset()
    image.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    pixels, _photometric, _frames = _decode_with_pydicom(image, transfer_syntax)
    return pixels


def _decode_with_pydicom(ds: Dataset, transfer_syntax: str) -> tuple[bytes, str, int]:
    """The decoded pixels, their Photometric Interpretation and number of frames.

    Decodes into one writable array, as `ds.pixel_array` does: pydicom's
    frame-by-frame decompress() corrects the sign of a JPEG 2000 codestream
    whose signedness disagrees with Pixel Representation in place, which fails
    on the read-only frames some plugins return.
    """
    decoder = get_decoder(transfer_syntax)
    # pydicom annotates its keyword options as one DecodeOptions each, not as Unpack.
    options: dict[str, Any] = {"as_rgb": transfer_syntax in ALWAYS_LOSSY}
    try:
        with warnings.catch_warnings():
            # pydicom warns when compressed and native sizes happen to agree; the size is
            # checked against the image attributes, so the hint is not needed here.
            warnings.simplefilter("ignore", UserWarning)
            arr, properties = decoder.as_array(ds, **options)
    except Exception as exc:  # decoder plugins raise whatever their C libraries report
        raise ConversionFailed(
            f"decoding {describe(transfer_syntax)} Pixel Data failed: {exc}"
        ) from exc
    cell = _cell_dtype(ds)
    if cell is not None and arr.dtype.itemsize < cell.itemsize:
        # Some plugins size the array by the codestream's precision (8 bits) rather
        # than Bits Allocated (16); the values fit the stored cell unchanged.
        arr = arr.astype(cell)
    photometric = str(properties["photometric_interpretation"])
    return arr.tobytes(), photometric, int(properties["number_of_frames"])


def _cell_dtype(ds: Dataset) -> np.dtype[Any] | None:
    bits_allocated = int(ds.get("BitsAllocated", 0))
    if bits_allocated not in (8, 16, 32, 64):
        return None
    kind = "i" if int(ds.get("PixelRepresentation", 0)) else "u"
    return np.dtype(f"<{kind}{bits_allocated // 8}")


def _set_native_pixel_data(ds: Dataset, pixels: bytes, photometric: str, frames: int) -> None:
    """Put decoded `pixels` in `ds` and make the Image Pixel attributes describe them.

    `frames` of 0 leaves Number of Frames as it is.
    """
    ds.PixelData = pixels + b"\x00" if len(pixels) % 2 else pixels
    element = ds["PixelData"]
    element.is_undefined_length = False
    element.VR = VR.OB if int(ds.BitsAllocated) <= 8 else VR.OW
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PhotometricInterpretation = photometric
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        ds.PlanarConfiguration = 0
    if frames and ("NumberOfFrames" in ds or frames > 1):
        ds.NumberOfFrames = frames


def _decoder(transfer_syntax: str) -> Decoder | None:
    try:
        return get_decoder(transfer_syntax)
    except NotImplementedError:
        return None


def _drop_encapsulated_icons(ds: Dataset) -> None:
    """Remove Icon Image Sequences whose Pixel Data is still compressed (PS3.5 A.4).

    An uncompressed syntax cannot carry encapsulated Pixel Data anywhere, and
    the icon is an optional thumbnail (PS3.3 C.7.6.1), so it goes rather than
    being decoded too.
    """
    sequences: list[BaseTag] = [elem.tag for elem in ds.elements() if elem.VR == VR.SQ]
    for tag in sequences:
        items: list[Dataset] = list(ds[tag].value)
        if tag == ICON_IMAGE_SEQUENCE and any(_is_encapsulated(item) for item in items):
            log.debug("dropping an Icon Image Sequence with compressed Pixel Data")
            del ds[tag]
            continue
        for item in items:
            _drop_encapsulated_icons(item)


def _is_encapsulated(item: Dataset) -> bool:
    return "PixelData" in item and bool(item["PixelData"].is_undefined_length)
