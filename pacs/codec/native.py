"""Backend: encode a data set in an uncompressed transfer syntax with pydicom's writer."""

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.tag import Tag
from pydicom.uid import UID
from pydicom.valuerep import VR

from pacs.codec.errors import ConversionFailed

PIXEL_DATA = Tag(0x7FE0, 0x0010)
WORD_SIZE = {VR.OW: 2, VR.OF: 4, VR.OL: 4, VR.OD: 8, VR.OV: 8}
"""Bytes per value of the binary VRs whose byte order follows the transfer syntax (PS3.5 7.3)."""


def is_available() -> bool:
    """Always: re-encoding needs nothing beyond pydicom."""
    return True


def encode(ds: Dataset, source: str, target: str) -> bytes:
    """`ds` encoded in the uncompressed `target`; `source` is the byte order its values are in.

    pydicom converts numbers it has parsed but writes OW/OF/OL/OD/OV values as
    the bytes they are, so a change of byte order swaps those here first.
    A data set encoded implicit VR under an explicit VR syntax (pydicom reads
    it anyway) has every element parsed first, so each gets its VR from the
    dictionary instead of failing the write. Raises ConversionFailed when
    pydicom cannot write a value.
    """
    target_uid = UID(target)
    if any(elem.VR is None for elem in ds.elements()):
        ds.walk(_parsed)
    if UID(source).is_little_endian != target_uid.is_little_endian:
        _swap_byte_order(ds)
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = target_uid.is_implicit_VR
    buffer.is_little_endian = target_uid.is_little_endian
    try:
        write_dataset(buffer, ds)
    except Exception as exc:  # pydicom reports an unwritable value with many exception types
        raise ConversionFailed(f"encoding the data set failed: {exc}") from exc
    return buffer.getvalue()


def _parsed(ds: Dataset, elem: DataElement) -> None:
    """Nothing: Dataset.walk has already parsed `elem` by the time it is passed here."""


def _swap_byte_order(ds: Dataset) -> None:
    """Reverse the bytes of each binary value, recursing into sequences.

    Pixel Data swaps per pixel cell (Bits Allocated, as pydicom reads big
    endian files); cells of 8 bits or fewer have no byte order and become OB.
    """
    for elem in ds:  # iterating parses raw elements in the source byte order
        if elem.VR == VR.SQ:
            for item in elem.value:
                _swap_byte_order(item)
        elif elem.tag == PIXEL_DATA:
            bits_allocated = int(ds.get("BitsAllocated", 8))
            if bits_allocated <= 8:
                elem.VR = VR.OB
            else:
                elem.value = _swapped(elem.value, bits_allocated // 8)
        elif elem.VR in WORD_SIZE and elem.value:
            elem.value = _swapped(elem.value, WORD_SIZE[VR(elem.VR)])


def _swapped(value: bytes, width: int) -> bytes:
    whole = len(value) - len(value) % width
    words = np.frombuffer(value, dtype=f"u{width}", count=whole // width)
    return words.byteswap().tobytes() + value[whole:]
