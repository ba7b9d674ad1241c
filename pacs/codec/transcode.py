"""Convert a stored instance's data set to a transfer syntax its receiver accepted."""

from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset

from pacs.codec import decoders, native
from pacs.codec.errors import ConversionFailed, ConversionUnavailable
from pacs.codec.lossy import record_lossy_compression
from pacs.codec.syntaxes import NATIVE, READABLE_AS_IS, describe
from pacs.dicom.part10 import seek_data_set

__all__ = ["ConversionFailed", "ConversionUnavailable", "can_convert", "convert"]


def can_convert(source_ts: str, target_ts: str) -> bool:
    """Whether `convert` can turn data sets stored in `source_ts` into `target_ts`.

    Targets are the uncompressed syntaxes (or the source itself); a compressed
    source must be one pacs decodes (syntaxes.DECODED) with its decoder
    installed. A pixel format a decoder cannot handle still fails with
    ConversionUnavailable from `convert`.
    """
    if source_ts == target_ts:
        return True
    if target_ts not in NATIVE:
        return False
    return source_ts in READABLE_AS_IS or decoders.is_available(source_ts)


def convert(part10: BinaryIO, target_ts: str) -> bytes:
    """The data set of the Part 10 file read from `part10`, encoded in `target_ts` (no
    preamble or meta). The file object is read from its start and left open.

    Blocking and memory-bound by the decoded pixel data: callers run it in a
    thread. Raises ConversionUnavailable (no such conversion here) or its
    subclass ConversionFailed (this file could not be read or decoded).
    """
    try:
        source_ts = seek_data_set(part10).transfer_syntax_uid
    except ValueError as exc:
        raise ConversionFailed(f"not a readable Part 10 file: {exc}") from exc
    if source_ts == target_ts:
        return part10.read()
    _check_convertible(source_ts, target_ts)
    ds = _read(part10)
    if source_ts not in READABLE_AS_IS and "PixelData" in ds:
        compressed_size = decoders.decompress(ds, source_ts)
        record_lossy_compression(ds, source_ts, compressed_size)
    return native.encode(ds, source_ts, target_ts)


def _check_convertible(source_ts: str, target_ts: str) -> None:
    if target_ts not in NATIVE:
        raise ConversionUnavailable(
            f"cannot encode {describe(target_ts)}: conversion writes only uncompressed syntaxes"
        )
    if source_ts not in READABLE_AS_IS and not decoders.is_available(source_ts):
        raise ConversionUnavailable(decoders.why_unavailable(source_ts))


def _read(part10: BinaryIO) -> Dataset:
    part10.seek(0)
    try:
        return dcmread(part10)
    except Exception as exc:  # pydicom reports a damaged file with many exception types
        raise ConversionFailed(f"reading the data set failed: {exc}") from exc
