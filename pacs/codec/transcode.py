"""Convert a stored instance's data set to a transfer syntax its receiver accepted."""

from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from pacs.codec import decoders, native
from pacs.codec.errors import ConversionFailed, ConversionUnavailable
from pacs.codec.lossy import record_lossy_compression
from pacs.codec.part10 import read_data_set
from pacs.codec.syntaxes import NATIVE, READABLE_AS_IS, describe

__all__ = [
    "ConversionFailed",
    "ConversionUnavailable",
    "can_convert",
    "convert_file",
    "read_data_set",
]


def can_convert(source_ts: str, target_ts: str) -> bool:
    """Whether convert_file can turn data sets stored in `source_ts` into `target_ts`.

    Targets are the uncompressed syntaxes (or the source itself); a compressed
    source must be one pacs decodes (syntaxes.DECODED) with its decoder
    installed. A pixel format a decoder cannot handle still fails with
    ConversionUnavailable from convert_file.
    """
    if source_ts == target_ts:
        return True
    if target_ts not in NATIVE:
        return False
    return source_ts in READABLE_AS_IS or decoders.is_available(source_ts)


def convert_file(path: Path, target_ts: str) -> bytes:
    """The data set of the Part 10 file at `path`, encoded in `target_ts` (no preamble or meta).

    Blocking and memory-bound by the decoded pixel data: callers run it in a
    thread. Raises ConversionUnavailable (no such conversion here) or its
    subclass ConversionFailed (this file could not be read or decoded).
    """
    try:
        source_ts, offset = read_data_set(path)
    except ValueError as exc:
        raise ConversionFailed(f"{path} is not a readable Part 10 file: {exc}") from exc
    if source_ts == target_ts:
        with path.open("rb") as stream:
            stream.seek(offset)
            return stream.read()
    _check_convertible(source_ts, target_ts)
    ds = _read(path)
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


def _read(path: Path) -> Dataset:
    try:
        return dcmread(path)
    except Exception as exc:  # pydicom reports a damaged file with many exception types
        raise ConversionFailed(f"reading the data set of {path} failed: {exc}") from exc
