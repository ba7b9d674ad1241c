"""Backend: decode 12-bit JPEG Extended (Process 4) with GDCM's own API.

pydicom's GDCM plugin refuses 12-bit JPEG Extended although GDCM's IJG build
decodes it, and its other plugin for it (pylibjpeg-libjpeg) is GPL-3.0. This
backend hands each frame to GDCM as pydicom's plugin does, without the refusal.
Monochrome only: 12-bit colour JPEG is not decoded here, and says so.
"""

from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import JPEGExtended12Bit

from pacs.codec.errors import ConversionFailed, ConversionUnavailable

try:
    import gdcm

    HAVE_GDCM = True
except ImportError:  # python-gdcm is a dependency; a broken install is reported, not raised
    HAVE_GDCM = False

PIXEL_DATA = (0x7FE0, 0x0010)


def handles(ds: Dataset, transfer_syntax: str) -> bool:
    """Whether `ds` is JPEG Extended with more than 8 bits per sample: this backend's case."""
    return transfer_syntax == JPEGExtended12Bit and int(ds.get("BitsStored", 8)) > 8


def decode(ds: Dataset) -> bytes:
    """All frames of `ds`'s Pixel Data decoded to native little endian, 16 bits per sample."""
    if not HAVE_GDCM:
        raise ConversionUnavailable(
            "no decoder for 12-bit JPEG Extended is installed; install python-gdcm"
        )
    if int(ds.get("SamplesPerPixel", 1)) != 1 or int(ds.get("BitsAllocated", 0)) != 16:
        raise ConversionUnavailable(
            "12-bit JPEG Extended is decoded only as monochrome with Bits Allocated 16, "
            f"not {ds.get('SamplesPerPixel')} samples of {ds.get('BitsAllocated')} bits"
        )
    frame_count = int(ds.get("NumberOfFrames") or 1)
    frame_size = int(ds.Rows) * int(ds.Columns) * 2
    extended = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    frames = []
    for index, src in enumerate(
        generate_frames(ds.PixelData, number_of_frames=frame_count, extended_offsets=extended)
    ):
        frame = _decode_frame(ds, src)
        if len(frame) != frame_size:
            raise ConversionFailed(
                f"decoding 12-bit JPEG Extended frame {index + 1} gave {len(frame)} bytes, "
                f"not the {frame_size} its Rows and Columns describe"
            )
        frames.append(frame)
    return b"".join(frames)


def _decode_frame(ds: Dataset, src: bytes) -> bytes:
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(src)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(*PIXEL_DATA))
    element.SetValue(fragments.__ref__())

    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((int(ds.Columns), int(ds.Rows), 1))
    image.SetDataElement(element)
    photometric = gdcm.PhotometricInterpretation.GetPIType(str(ds.PhotometricInterpretation))
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(photometric))
    syntax = gdcm.TransferSyntax.GetTSType(str(JPEGExtended12Bit))
    image.SetTransferSyntax(gdcm.TransferSyntax(syntax))
    bits_stored = int(ds.BitsStored)
    image.SetPixelFormat(
        gdcm.PixelFormat(1, 16, bits_stored, bits_stored - 1, int(ds.PixelRepresentation))
    )
    buffer = image.GetBuffer()
    if buffer is None:
        raise ConversionFailed("GDCM could not decode a 12-bit JPEG Extended frame")
    # GDCM hands the frame's bytes over as str; this recovers them unchanged.
    return bytes(buffer.encode("utf-8", "surrogateescape"))
