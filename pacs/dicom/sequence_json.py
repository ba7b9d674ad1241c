"""DICOM JSON of a header's top-level sequence, from the sequence's own bytes.

pydicom converts it, as it converts it inside the whole data set, but from a data set
of two elements: the header's Specific Character Set and the sequence. That gives
the same JSON only when nothing else in the header can change it: in explicit VR
when the nested elements all carry a plain VR (no UN, whose VR pydicom may look up
and resolve from Pixel Representation; no items in implicit VR), in implicit VR
when they are all public with one dictionary VR (no private element, whose VR its
creator decides; no US or SS). Anything else returns None, and the caller
parses the whole data set as before. Sequences repeat from instance to instance in a
series (procedure codes, request attributes), so their JSON is kept by their bytes.
"""

import io

from pydicom.filereader import read_dataset

from pacs.dicom.element_scan import KNOWN_VRS, Buffer, Element, nested
from pacs.dicom.header import element_value
from pacs.dicom.value_json import JsonElement, implicit_vr

# VRs whose value pydicom reads the same whatever else the data set holds.
PLAIN_VRS = frozenset(KNOWN_VRS) - {b"UN"}
PLAIN_VR_NAMES = frozenset(KNOWN_VRS.values()) - {"UN"}
_seen: dict[tuple[int, bytes, bytes, bool], JsonElement] = {}
SEEN_ENTRIES = 1024
SEEN_SEQUENCE_BYTES = 4096


def _is_sequence(tag: int) -> bool:
    return implicit_vr(tag) == "SQ"


def _plain(buf: Buffer, element: Element, implicit: bool) -> bool:
    """Whether every element nested in the sequence converts without the rest of the header:
    a plain VR in explicit VR; in implicit VR, a public tag with one dictionary VR."""
    tags, vrs = nested(buf, element, implicit, _is_sequence)
    if not implicit:
        return vrs <= PLAIN_VRS
    return all(implicit_vr(tag) in PLAIN_VR_NAMES for tag in tags)


def sequence_json(
    buf: Buffer, tag: int, element: Element, charset: bytes, implicit: bool
) -> JsonElement | None:
    """The JSON of a sequence element, or None when it needs the whole data set.

    `charset` is the header's Specific Character Set element as encoded, or b"".
    """
    _vr, _start, _length, head, end = element
    raw = bytes(buf[head:end])
    key = (tag, charset, raw, implicit)
    value = _seen.get(key)
    if value is not None:
        return value
    try:
        if not _plain(buf, element, implicit):
            return None
        alone = read_dataset(io.BytesIO(charset + raw), implicit, is_little_endian=True)
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
