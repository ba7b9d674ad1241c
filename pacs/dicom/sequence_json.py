"""DICOM JSON of a header's top-level sequence, from the sequence's own bytes.

pydicom converts it, as it converts it inside the whole data set, but from a data set
of two elements: the header's Specific Character Set and the sequence. That gives
the same JSON only when nothing else in the header can change it, which holds in
explicit VR for a sequence whose elements all carry a plain VR: no UN (pydicom may
look its VR up and resolve US or SS from Pixel Representation), no implicit VR items
(their VRs come from the dictionary). Anything else returns None, and the caller
parses the whole data set as before. Sequences repeat from instance to instance in a
series (procedure codes, request attributes), so their JSON is kept by their bytes.
"""

import io

from pydicom.filereader import read_dataset

from pacs.dicom.element_scan import KNOWN_VRS, Buffer, Element, nested_vrs
from pacs.dicom.header import element_value
from pacs.dicom.value_json import JsonElement

# VRs whose value pydicom reads the same whatever else the data set holds.
PLAIN_VRS = frozenset(KNOWN_VRS) - {b"UN"}
_seen: dict[tuple[int, bytes, bytes], JsonElement] = {}
SEEN_ENTRIES = 1024
SEEN_SEQUENCE_BYTES = 4096


def sequence_json(buf: Buffer, tag: int, element: Element, charset: bytes) -> JsonElement | None:
    """The JSON of an explicit VR sequence element, or None when it needs the whole data set.

    `charset` is the header's Specific Character Set element as encoded, or b"".
    """
    _vr, _start, _length, head, end = element
    raw = bytes(buf[head:end])
    key = (tag, charset, raw)
    value = _seen.get(key)
    if value is not None:
        return value
    try:
        if not nested_vrs(buf, element) <= PLAIN_VRS:
            return None
        alone = read_dataset(io.BytesIO(charset + raw), is_implicit_VR=False, is_little_endian=True)
        value = element_value(
            alone, alone.get_item(tag), str(alone.get("SpecificCharacterSet", ""))
        )
    except Exception:
        return None  # the whole data set's parse decides what is wrong, as before
    if value is None:
        return None
    if len(raw) <= SEEN_SEQUENCE_BYTES:
        if len(_seen) >= SEEN_ENTRIES:
            _seen.clear()
        _seen[key] = value
    return value
