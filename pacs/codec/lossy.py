"""Lossy Image Compression attributes kept truthful after decoding (PS3.3 C.7.6.1.1.5)."""

from pydicom.dataset import Dataset

from pacs.codec.syntaxes import ALWAYS_LOSSY, COMPRESSION_METHOD, MAYBE_LOSSY


def record_lossy_compression(ds: Dataset, transfer_syntax: str, compressed_size: int) -> None:
    """Mark decoded `ds` as lossy compressed when its stored syntax was or may have been lossy.

    Decoding adds no loss, so the SOP Instance UID stays. Once the syntax no
    longer says so, only these attributes tell a receiver the pixels went
    through lossy compression. The method is added when the data set does not
    already name it, with the ratio of this compression when the existing
    ratios pair up with the existing methods.
    """
    lossy = transfer_syntax in ALWAYS_LOSSY or (
        transfer_syntax in MAYBE_LOSSY and ds.get("LossyImageCompression") != "00"
    )
    if not lossy:
        return
    ds.LossyImageCompression = "01"
    method = COMPRESSION_METHOD[transfer_syntax]
    methods = _values(ds, "LossyImageCompressionMethod")
    if method in methods:
        return
    ratios = _values(ds, "LossyImageCompressionRatio")
    if len(ratios) == len(methods):
        ratio = len(ds.PixelData) / compressed_size
        ds.LossyImageCompressionRatio = [*ratios, f"{ratio:.2f}"]
    ds.LossyImageCompressionMethod = [*methods, method]


def _values(ds: Dataset, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, str | float):
        return [str(value)]
    return [str(item) for item in value]
