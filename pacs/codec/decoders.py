"""Backend: decompress Pixel Data with pydicom's decoders (pylibjpeg, libjpeg, openjpeg, RLE)."""

import logging
import warnings

from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import Decoder, get_decoder
from pydicom.pixels.utils import decompress as decompress_in_place
from pydicom.pixels.utils import get_expected_length
from pydicom.tag import BaseTag, Tag
from pydicom.valuerep import VR

from pacs.codec.errors import ConversionFailed
from pacs.codec.syntaxes import ALWAYS_LOSSY, describe

log = logging.getLogger(__name__)

ICON_IMAGE_SEQUENCE = Tag(0x0088, 0x0200)


def is_available(transfer_syntax: str) -> bool:
    """Whether an installed plugin decodes Pixel Data in this transfer syntax."""
    decoder = _decoder(transfer_syntax)
    return decoder is not None and decoder.is_available


def why_unavailable(transfer_syntax: str) -> str:
    """Why this transfer syntax cannot be decoded here, naming what would make it possible."""
    name = describe(transfer_syntax)
    decoder = _decoder(transfer_syntax)
    if decoder is None:
        return f"no decoder exists for {name}"
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
    codec itself, leaving RGB. pydicom sets Photometric Interpretation,
    Planar Configuration (0) and Number of Frames to match the decoded bytes.
    """
    compressed_size = len(ds.PixelData)
    try:
        with warnings.catch_warnings():
            # pydicom warns when compressed and native sizes happen to agree; the size is
            # checked below against the image attributes, so the hint is not needed here.
            warnings.simplefilter("ignore", UserWarning)
            decompress_in_place(
                ds, as_rgb=transfer_syntax in ALWAYS_LOSSY, generate_instance_uid=False
            )
    except Exception as exc:  # decoder plugins raise whatever their C libraries report
        raise ConversionFailed(
            f"decoding {describe(transfer_syntax)} Pixel Data failed: {exc}"
        ) from exc
    expected = get_expected_length(ds, "bytes")
    if len(ds.PixelData) not in (expected, expected + 1):
        raise ConversionFailed(
            f"decoded {describe(transfer_syntax)} Pixel Data has {len(ds.PixelData)} bytes, "
            f"but its Image Pixel attributes describe {expected}"
        )
    _drop_encapsulated_icons(ds)
    return compressed_size


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
