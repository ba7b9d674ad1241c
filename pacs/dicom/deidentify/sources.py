"""The two releases of PS3.15 Table E.1-1 that pacs reads, from packages installed beside it.

- `dicom-standard` (Innolitics, MIT) installs the table as the standard's 2020 release
  printed it, with every option column, as a data file under the environment's prefix
  (`standard/confidentiality_profile_attributes.json`); it is found through the
  distribution's record of its files and checked against the hash recorded there.
- `dicom_anonymizer` (Kitware, BSD) lists the Basic Profile's action codes of release
  2026c in `dicomfields_2026c`, one list of tags per code, with no option columns.

Both are read into rows of one shape, the 2020 file's: tag "(gggg,eeee)" or a pattern
such as "(60XX,3000)", name, `basicProfile` code, and option codes by column. Nothing
is read before `standard_2020()` or `release_2026c()` is called.
"""

import base64
import hashlib
import importlib
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from pydicom.datadict import dictionary_description

STANDARD_DISTRIBUTION = "dicom-standard"
STANDARD_FILE = ("standard", "confidentiality_profile_attributes.json")
ANONYMIZER_DISTRIBUTION = "dicom_anonymizer"
ANONYMIZER_MODULE = "dicomanonymizer.dicom_anonymization_databases.dicomfields_2026c"
# The module's list for each code (its own spelling of them).
_CODE_LISTS = {
    "X": "X_TAGS",
    "Z": "Z_TAGS",
    "D": "D_TAGS",
    "U": "U_TAGS",
    "Z/D": "Z_D_TAGS",
    "X/Z": "X_Z_TAGS",
    "X/D": "X_D_TAGS",
    "X/Z/D": "X_Z_D_TAGS",
    "X/Z/U*": "X_Z_U_STAR_TAGS",
}


@dataclass(frozen=True, slots=True)
class Source:
    """One release of the table: where it came from and its rows."""

    name: str
    entries: list[dict[str, str]]


def _as_installed(file: metadata.PackagePath, path: Path) -> None:
    """Refuse a file that differs from the one the wheel installed (RECORD's hash)."""
    if file.hash is None or file.hash.mode != "sha256":
        return
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest())
    if digest.rstrip(b"=").decode() != file.hash.value:
        raise LookupError(f"{path} differs from the file {STANDARD_DISTRIBUTION} installed")


def _standard_file() -> Path:
    distribution = metadata.distribution(STANDARD_DISTRIBUTION)
    for file in distribution.files or ():
        if file.parts[-2:] == STANDARD_FILE:
            path = Path(str(distribution.locate_file(file))).resolve()
            _as_installed(file, path)
            return path
    raise LookupError(f"{STANDARD_DISTRIBUTION} installed no {'/'.join(STANDARD_FILE)}")


def standard_2020() -> Source:
    """Table E.1-1 of release 2020 with its option columns, from `dicom-standard`."""
    entries = json.loads(_standard_file().read_text(encoding="utf-8"))
    version = metadata.version(STANDARD_DISTRIBUTION)
    return Source(f"PS3.15 2020 ({STANDARD_DISTRIBUTION} {version})", entries)


def _tag_text(tag: tuple[int, ...]) -> str:
    """ "(gggg,eeee)"; a (group, element, group mask, element mask) entry as a pattern, its
    masked-out hex digits as X, the way the standard writes repeating groups."""
    group, element = tag[0], tag[1]
    if len(tag) == 2:
        return f"({group:04X},{element:04X})"
    digits = f"{group:04X}{element:04X}"
    mask = f"{tag[2]:04X}{tag[3]:04X}"
    if set(mask) - {"0", "F"}:
        raise ValueError(f"Table E.1-1 pattern with a mask that is no hex digit: {mask}")
    shown = "".join("X" if bits == "0" else digit for digit, bits in zip(digits, mask, strict=True))
    return f"({shown[:4]},{shown[4:]})"


def _name(tag: tuple[int, ...]) -> str:
    try:
        return str(dictionary_description((tag[0] << 16) | tag[1]))
    except KeyError:
        return ""


def release_2026c() -> Source:
    """The Basic Profile's codes of release 2026c, from `dicom_anonymizer`."""
    module = importlib.import_module(ANONYMIZER_MODULE)
    entries = [
        {"tag": _tag_text(tuple(tag)), "name": _name(tuple(tag)), "basicProfile": code}
        for code, list_name in _CODE_LISTS.items()
        for tag in getattr(module, list_name)
    ]
    version = metadata.version(ANONYMIZER_DISTRIBUTION)
    return Source(f"PS3.15 2026c ({ANONYMIZER_DISTRIBUTION} {version})", entries)
