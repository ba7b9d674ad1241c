"""The proof of de-identification: what an output's bytes must not contain, worked out from
Table E.1-1 (the union of the two releases pacs reads) and the source instance,
independently of pacs's own resolution of actions.

`expected_values` walks the source: the text values (>= 4 characters) of every attribute
the profile removes or replaces, nested ones and private blocks included, and those it
keeps. `leaks` looks for each removed value in the output's bytes, where it may only
appear inside a kept value (the table keeps it legitimately) or by chance inside bytes
that are no header text: bulk binary values, kept unchanged, and the freshly made
replacement values (new UIDs, the pseudonym, dummies), which are masked first.
"""

from dataclasses import dataclass, field

from pydicom.charset import convert_encodings, encode_string
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from pacs.dicom.deidentify import Profile, SafePrivateTag, action_table
from pacs.dicom.deidentify.table import Option, Row

MIN_LENGTH = 4
TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI"}
    | {"UR", "UT"}
)
BULK_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV"})
DUMMIES = (b"ANONYMIZED", b"19000101000000", b"19000101", b"000000", b"000Y")


@dataclass
class Expectation:
    removed: set[bytes] = field(default_factory=set)
    kept: set[bytes] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)  # every UID value in the source


def _encodings(ds: Dataset) -> list[str]:
    return convert_encodings(ds.get("SpecificCharacterSet", None) or "ISO_IR 6")


def _texts(element: DataElement, encodings: list[str]) -> list[bytes]:
    values = element.value if isinstance(element.value, MultiValue) else [element.value]
    texts: list[str] = []
    for value in values:
        if value is None:
            continue
        text = str(value).strip(" \x00")
        texts.append(text)
        if element.VR == "PN":
            texts.extend(part for group in text.split("=") for part in group.split("^"))
    encoded = set()
    for text in texts:
        if len(text) >= MIN_LENGTH:
            try:
                encoded.add(encode_string(text, encodings))
            except (UnicodeError, LookupError, ValueError):
                encoded.add(text.encode("utf-8", "replace"))
    return sorted(encoded)


def _kept_by_options(row: Row, profile: Profile, vr: str) -> bool:
    chosen = {option: row.options[option] for option in profile.options() if option in row.options}
    if "X" in chosen.values():  # an option that removes it (Retain UIDs, Referenced Patient)
        return False
    if "K" in chosen.values():
        return True
    if "C" not in chosen.values():
        return False
    # Modified Dates cleans dates by moving them: the original DA/DT value is gone, a TM
    # stays (whole-day shifts), and a value of another VR takes the Basic Profile's action.
    others = {option for option, code in chosen.items() if code == "C"}
    if others == {Option.RETAIN_MODIFIED_DATES}:
        return vr == "TM"
    return True


def _safe(profile: Profile, ds: Dataset, tag: int) -> bool:
    element = tag & 0xFFFF
    creator_tag = (tag & 0xFFFF0000) | (element >> 8)
    if element < 0x1000 or creator_tag not in ds:
        return False
    creator = str(ds[creator_tag].value or "").strip()
    return SafePrivateTag(tag >> 16, creator, element & 0xFF) in profile.safe_private


def _walk(ds: Dataset, profile: Profile, out: Expectation, removed: bool) -> None:
    table = action_table().by_tag
    encodings = _encodings(ds)
    for element in ds:
        tag = int(element.tag)
        group = tag >> 16
        if group & 1:
            gone = removed or not _safe(profile, ds, tag)
            recurse_all = True
        elif 0x5000 <= group < 0x5100 or 0x6000 <= group < 0x6100:
            gone, recurse_all = True, True
        else:
            row = table.get(tag)
            gone = removed or (row is not None and not _kept_by_options(row, profile, element.VR))
            # A sequence whose contained UIDs are replaced (X/Z/U*, U) is walked item by item.
            recurse_all = not (row is not None and row.basic in ("X/Z/U*", "U") and not removed)
        if element.VR == "SQ":
            for item in element.value:
                _walk(item, profile, out, gone if recurse_all else False)
            continue
        if element.VR == "UI" and element.value:
            values = element.value if isinstance(element.value, MultiValue) else [element.value]
            out.uids.update(str(uid) for uid in values)
        if element.VR in TEXT_VRS:
            (out.removed if gone else out.kept).update(_texts(element, encodings))


def expected_values(ds: Dataset, profile: Profile) -> Expectation:
    """The source's removed and kept text values under `profile`."""
    expectation = Expectation()
    _walk(ds, profile, expectation, removed=False)
    meta = getattr(ds, "file_meta", None) or Dataset()
    for keyword in ("MediaStorageSOPClassUID", "TransferSyntaxUID"):  # carried over, public
        if value := meta.get(keyword):
            expectation.kept.add(str(value).encode())
    return expectation


def _bulk_values(ds: Dataset) -> list[bytes]:
    found: list[bytes] = []
    for element in ds.iterall():
        value = element.value
        if element.VR in BULK_VRS and isinstance(value, bytes) and len(value) >= 64:
            found.append(value)
    return found


def leaks(
    written: bytes, output: Dataset, expectation: Expectation, fresh: list[str]
) -> list[bytes]:
    """Removed values found in the output's bytes outside kept values, bulk data and fresh
    replacements (`fresh`: the new UIDs and the pseudonym)."""
    masked = written
    for blob in sorted(_bulk_values(output), key=len, reverse=True):
        masked = masked.replace(blob, b"\x00" * len(blob))
    for text in sorted({*(value.encode() for value in fresh), *DUMMIES}, key=len, reverse=True):
        masked = masked.replace(text, b"\x00" * len(text))
    return sorted(
        value
        for value in expectation.removed
        if value in masked and not any(value in kept for kept in expectation.kept)
    )
