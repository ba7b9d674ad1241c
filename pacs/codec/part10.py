"""Find where a stored Part 10 file's data set starts and its transfer syntax, from the header."""

from pathlib import Path

from pacs.dicom.part10 import data_set_offset

HEAD = 144  # preamble, "DICM" and the (0002,0000) group length element
TRANSFER_SYNTAX_UID = (0x0002, 0x0010)
LONG_LENGTH_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)  # explicit VRs with a reserved field and a 32-bit length (PS3.5 7.1.2)


def read_data_set(path: Path) -> tuple[str, int]:
    """The stored transfer syntax UID and the byte offset where the data set starts (PS3.10 7.1).

    Reads only the File Meta Information, sized by its group length, so a
    caller can stream the data set bytes as stored. Raises ValueError for a
    file without a well-formed File Meta Information.
    """
    with path.open("rb") as stream:
        head = stream.read(HEAD)
        offset = data_set_offset(head)
        meta = stream.read(offset - HEAD)
    if len(meta) != offset - HEAD:
        raise ValueError(f"{path}: File Meta Information is cut short")
    return _transfer_syntax(meta), offset


def _transfer_syntax(meta: bytes) -> str:
    """(0002,0010) from explicit VR little endian meta elements after the group length."""
    position = 0
    while position + 8 <= len(meta):
        group = int.from_bytes(meta[position : position + 2], "little")
        element = int.from_bytes(meta[position + 2 : position + 4], "little")
        vr = meta[position + 4 : position + 6]
        if vr in LONG_LENGTH_VRS:
            length = int.from_bytes(meta[position + 8 : position + 12], "little")
            position += 12
        else:
            length = int.from_bytes(meta[position + 6 : position + 8], "little")
            position += 8
        if (group, element) == TRANSFER_SYNTAX_UID:
            return meta[position : position + length].rstrip(b"\x00 ").decode("ascii")
        position += length
    raise ValueError("File Meta Information has no (0002,0010) Transfer Syntax UID")
