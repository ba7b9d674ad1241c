"""Facts about transfer syntaxes that conversion decisions rest on (PS3.5 A, PS3.3 C.7.6.1.1.5)."""

from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

NATIVE = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian})
"""Uncompressed syntaxes: the only ones conversion writes."""

READABLE_AS_IS = NATIVE | {DeflatedExplicitVRLittleEndian}
"""Syntaxes pydicom reads without a pixel decoder."""

DECODED = frozenset(
    {
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        JPEGLossless,
        JPEGLosslessSV1,
        JPEGLSLossless,
        JPEGLSNearLossless,
        JPEG2000Lossless,
        JPEG2000,
        RLELossless,
    }
)
"""Compressed syntaxes conversion decodes: each is checked against an independent decoder on
real files (tests/unit/test_transcode_testfiles.py). pydicom has decoders for others (HTJ2K)
that no test file here exercises, so pacs does not claim them."""

ALWAYS_LOSSY = frozenset({JPEGBaseline8Bit, JPEGExtended12Bit})
"""Pixel data in these has been through a lossy (DCT) process, whatever the data set says."""

MAYBE_LOSSY = frozenset({JPEGLSNearLossless, JPEG2000, HTJ2K})
"""Lossy-capable: lossy unless the data set states Lossy Image Compression "00"."""

COMPRESSION_METHOD: dict[str, str] = {
    JPEGBaseline8Bit: "ISO_10918_1",
    JPEGExtended12Bit: "ISO_10918_1",
    JPEGLSNearLossless: "ISO_14495_1",
    JPEG2000: "ISO_15444_1",
    HTJ2K: "ISO_15444_15",
}
"""Lossy Image Compression Method defined terms (PS3.3 C.7.6.1.1.5.1)."""


def describe(uid: str) -> str:
    """The syntax's name for messages, or its UID when pydicom does not know it."""
    name = UID(uid).name
    return name if name and name != uid else f"unknown transfer syntax {uid}"
