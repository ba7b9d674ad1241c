"""The identifier codec: the data set of a request or response (a C-FIND/C-MOVE/C-GET
identifier, an N-ACTION or N-EVENT-REPORT information) to and from its transfer syntax."""

from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.dsutils import decode, encode

from pacs.dicom.matching import is_zero_length
from pacs.errors import InvalidIdentifier, PacsError


def decode_identifier(data: bytes, transfer_syntax: str) -> Dataset:
    """Decode an identifier; raise InvalidIdentifier when it is not a data set."""
    syntax = UID(transfer_syntax)
    try:
        identifier = decode(
            BytesIO(data), syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated
        )
        # Values decode lazily: fail here, not halfway through. pydicom takes a zero-length
        # element for a deferred read and converts it unless told to keep it raw, which
        # for return keys is work thrown away.
        for tag in identifier.keys():  # noqa: SIM118
            if not is_zero_length(identifier.get_item(tag, keep_deferred=True)):
                identifier[tag]
    except Exception as exc:
        raise InvalidIdentifier(f"the identifier cannot be decoded: {exc}") from exc
    return identifier


def encode_identifier(identifier: Dataset, transfer_syntax: str) -> bytes:
    """Encode a data set to send; raise PacsError when pydicom cannot."""
    syntax = UID(transfer_syntax)
    data = encode(identifier, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
    if data is None:
        raise PacsError("a response identifier could not be encoded")
    return bytes(data)
