"""Transfer-syntax negotiation for WADO-RS from the Accept header (PS3.18 8.7.3, 8.7.4).

Each media range of the header names a media type (a multipart range names it in its
`type` parameter) and maybe a `transfer-syntax`; the ranges, best `q` first, become the
list of transfer syntaxes the client takes for the resource, `*` meaning "as stored".
A range without a syntax takes its media type's default (PS3.18 Table 8.7.3-3/-5:
Explicit VR Little Endian for application/dicom and application/octet-stream; any
syntax of that media type for an image type). `*/*`, or no Accept header, leaves the
choice to the server: as stored. A range that contradicts itself (a syntax that is no
UID, or not one of its media type's, two different syntaxes) is a 400; a header
naming nothing this resource can be is a 406.
"""

import re
from dataclasses import dataclass

from pydicom.uid import ExplicitVRLittleEndian

from pacs.errors import TransferUnavailable
from pacs.web.errors import BadRequest

AS_STORED = "*"
DICOM = "application/dicom"
OCTET_STREAM = "application/octet-stream"
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_MEDIA = re.compile(r"[A-Za-z0-9!#$&^_.+*-]+/[A-Za-z0-9!#$&^_.+*-]+")
# PS3.18 Table 8.7.3-5: the syntaxes an image media type carries frames in.
_JPEG = "1.2.840.10008.1.2.4."
IMAGE_SYNTAXES = {
    "image/jpeg": (f"{_JPEG}50", f"{_JPEG}51", f"{_JPEG}57", f"{_JPEG}70"),
    "image/jls": (f"{_JPEG}80", f"{_JPEG}81"),
    "image/jp2": (f"{_JPEG}90", f"{_JPEG}91"),
    "image/jpx": (f"{_JPEG}92", f"{_JPEG}93"),
    "image/dicom-rle": ("1.2.840.10008.1.2.5",),
}
IMAGE_SYNTAXES["image/x-jls"] = IMAGE_SYNTAXES["image/jls"]
IMAGE_SYNTAXES["image/x-dicom-rle"] = IMAGE_SYNTAXES["image/dicom-rle"]


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One range of an Accept header: the (inner) media type, its syntax, its weight."""

    media_type: str
    transfer_syntax: str | None
    q: float


def _split(text: str, separator: str) -> list[str]:
    """Split outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _range(text: str) -> MediaRange:
    outer, *params = _split(text, ";")
    outer = outer.lower()
    values: dict[str, str] = {}
    for param in params:
        name, _, value = param.partition("=")
        name, value = name.strip().lower(), value.strip().strip('"')
        if name in values and values[name] != value:
            raise BadRequest(f"Accept: {text!r} gives {name} twice")
        values[name] = value
    media = values.get("type", "*/*").lower() if outer.startswith("multipart/") else outer
    if not _MEDIA.fullmatch(outer) or not _MEDIA.fullmatch(media):
        raise BadRequest(f"Accept: {text!r} is not a media range")
    syntax = values.get("transfer-syntax")
    if syntax is not None and syntax != AS_STORED and not _UID.fullmatch(syntax):
        raise BadRequest(f"Accept: transfer-syntax {syntax!r} is not a UID")
    if syntax not in (None, AS_STORED, *IMAGE_SYNTAXES.get(media, (syntax,))):
        raise BadRequest(f"Accept: {media} cannot carry transfer-syntax {syntax}")
    try:
        q = float(values.get("q", "1"))
    except ValueError as exc:
        raise BadRequest(f"Accept: {text!r} has a q that is no number") from exc
    return MediaRange(media, syntax, q)


def parse_accept(header: str | None) -> list[MediaRange]:
    """The ranges of an Accept header, best first (an absent header: `*/*`)."""
    if not header or not header.strip():
        return [MediaRange("*/*", None, 1.0)]
    ranges = [_range(text) for text in _split(header, ",") if text]
    return sorted((r for r in ranges if r.q > 0), key=lambda r: -r.q)


def _syntaxes(media: MediaRange, default_type: str, images: bool) -> list[str]:
    """The syntaxes one range takes for a resource whose own media type is default_type."""
    kind = media.media_type
    if kind in ("*/*", default_type) or kind == default_type.split("/", maxsplit=1)[0] + "/*":
        if media.transfer_syntax is not None:
            return [media.transfer_syntax]
        return [AS_STORED] if kind.endswith("*") else [ExplicitVRLittleEndian]
    if images and (kind in IMAGE_SYNTAXES or kind == "image/*"):
        if media.transfer_syntax is not None:
            return [media.transfer_syntax]
        if kind == "image/*":
            return [uid for uids in IMAGE_SYNTAXES.values() for uid in uids]
        return list(IMAGE_SYNTAXES[kind])
    return []


def accepted_syntaxes(header: str | None, default_type: str, images: bool = False) -> list[str]:
    """The transfer syntaxes the client takes, best first (`*`: as stored); 400 for a
    contradictory header, TransferUnavailable (406) when no range fits the resource."""
    accepted: list[str] = []
    for media in parse_accept(header):
        for syntax in _syntaxes(media, default_type, images):
            if syntax not in accepted:
                accepted.append(syntax)
    if not accepted:
        raise TransferUnavailable(f"Accept: {header!r} names nothing this resource can be")
    return accepted
