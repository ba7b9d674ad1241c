"""The Part 10 wrapping of a data set: preamble, "DICM" and File Meta Information (PS3.10 7.1).

Writes it in front of a received data set, and reads it back from a stored file: the
one place that knows where a stored file's data set starts and in which syntax.
"""

import struct
from typing import BinaryIO, NamedTuple

from pacs.dicom.identity import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacs.dicom.structure import LONG_VRS, ElementReader
from pacs.errors import InvalidInstance

HEAD = 144  # preamble, "DICM" and the (0002,0000) group length element
TRANSFER_SYNTAX_UID = 0x00020010


def _element(element: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element of group 0002."""
    if vr in LONG_VRS:  # 4-byte length after two reserved bytes (PS3.5 7.1.2)
        return struct.pack("<HH2sxxI", 0x0002, element, vr, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    raw = text.encode("latin-1", errors="replace")
    return raw + pad if len(raw) % 2 else raw


def file_meta_bytes(
    sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str, source_ae_title: str
) -> bytes:
    """Preamble, prefix and File Meta Information naming the negotiated transfer syntax.

    Encoded by hand, not through pydicom's writer: this runs once per received
    instance and the group is seven fixed elements (what pydicom writes, byte for byte).
    """
    elements = [
        _element(0x0001, b"OB", b"\x00\x01"),
        _element(0x0002, b"UI", _padded(sop_class_uid, b"\x00")),
        _element(0x0003, b"UI", _padded(sop_instance_uid, b"\x00")),
        _element(0x0010, b"UI", _padded(transfer_syntax_uid, b"\x00")),
        _element(0x0012, b"UI", _padded(IMPLEMENTATION_CLASS_UID, b"\x00")),
        _element(0x0013, b"SH", _padded(IMPLEMENTATION_VERSION_NAME, b" ")),
    ]
    if source_ae_title:
        elements.append(_element(0x0016, b"AE", _padded(source_ae_title, b" ")))
    body = b"".join(elements)
    group_length = _element(0x0000, b"UL", struct.pack("<I", len(body)))
    return b"\x00" * 128 + b"DICM" + group_length + body


def data_set_offset(head: bytes) -> int:
    """Where the data set starts in a Part 10 file, from its first 144 bytes (PS3.10 7.1).

    File Meta Information starts after the 128-byte preamble and "DICM" with
    (0002,0000) File Meta Information Group Length, explicit VR: UL, 4 bytes.
    """
    if len(head) < HEAD or head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
        raise ValueError("not a Part 10 file with a File Meta Information Group Length")
    return HEAD + int.from_bytes(head[140:HEAD], "little")


class DataSetStart(NamedTuple):
    """Where a Part 10 file's data set starts, and the transfer syntax it is encoded in."""

    transfer_syntax_uid: str
    offset: int


def seek_data_set(fp: BinaryIO) -> DataSetStart:
    """Read the File Meta Information from fp's start and leave fp at the data set.

    Reads only the meta group, sized by its group length, so a caller can then
    stream the data set bytes as stored. Raises ValueError for a file without a
    well-formed File Meta Information naming a transfer syntax.
    """
    fp.seek(0)
    offset = data_set_offset(fp.read(HEAD))
    meta = ElementReader(fp, offset, implicit=False, little=True)
    syntax = None
    try:
        while fp.tell() < offset:
            tag = meta.tag()
            length = meta.length_of(tag)
            if tag == TRANSFER_SYNTAX_UID:
                syntax = meta.value(length).rstrip(b"\x00 ").decode("ascii")
            else:
                meta.skip(length)
    except InvalidInstance as exc:
        raise ValueError(f"File Meta Information is cut short: {exc}") from exc
    if syntax is None:
        raise ValueError("File Meta Information has no (0002,0010) Transfer Syntax UID")
    return DataSetStart(syntax, offset)


SOP_CLASS_UID = 0x00020002
SOP_INSTANCE_UID = 0x00020003
SOURCE_AE_TITLE = 0x00020016
_META_TEXT = {
    SOP_CLASS_UID: "sop_class_uid",
    SOP_INSTANCE_UID: "sop_instance_uid",
    TRANSFER_SYNTAX_UID: "transfer_syntax_uid",
    SOURCE_AE_TITLE: "source_ae_title",
}


class FileMeta(NamedTuple):
    """What a Part 10 file's File Meta Information says about its data set, and where it starts.

    `source_ae_title` is '' when the file names none.
    """

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    source_ae_title: str
    offset: int


def read_file_meta(fp: BinaryIO) -> FileMeta:
    """Read the File Meta Information from fp's start and leave fp at the data set.

    Raises ValueError for a file that is not Part 10 or whose meta group lacks the
    media storage SOP class and instance UIDs or the transfer syntax.
    """
    fp.seek(0)
    offset = data_set_offset(fp.read(HEAD))
    meta = ElementReader(fp, offset, implicit=False, little=True)
    found = dict.fromkeys(_META_TEXT.values(), "")
    try:
        while fp.tell() < offset:
            tag = meta.tag()
            length = meta.length_of(tag)
            if tag in _META_TEXT:
                raw = meta.value(length).rstrip(b"\x00 ").lstrip(b" ")
                found[_META_TEXT[tag]] = raw.decode("ascii")
            else:
                meta.skip(length)
    except (InvalidInstance, UnicodeDecodeError) as exc:
        raise ValueError(f"File Meta Information cannot be read: {exc}") from exc
    required = ("sop_class_uid", "sop_instance_uid", "transfer_syntax_uid")
    missing = [name for name in required if not found[name]]
    if missing:
        raise ValueError(f"File Meta Information has no {', '.join(missing)}")
    return FileMeta(offset=offset, **found)
