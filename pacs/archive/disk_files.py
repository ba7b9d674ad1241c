"""The files `pacs import` is given: paths walked recursively, DICOMDIRs read for what they list.

Blocking (directory walks, a DICOMDIR's parse): async callers run it in a thread.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

DICOMDIR = "DICOMDIR"


@dataclass(frozen=True, slots=True)
class Missing:
    """A path given, or listed in a DICOMDIR, that is not there (or cannot be listed)."""

    path: str
    reason: str


@dataclass(slots=True)
class FileList:
    """What a walk found: the files to import, in a fixed order, and what was not there."""

    files: list[Path]
    missing: list[Missing]
    dicomdirs: int = 0


def _is_dicomdir(path: Path) -> bool:
    return path.name.upper() == DICOMDIR


def _listed(dicomdir: Path) -> list[Path]:
    """The files a DICOMDIR's directory records reference (PS3.10 8.5, PS3.3 F.3)."""
    directory = dcmread(dicomdir, stop_before_pixels=True)
    listed = []
    for record in directory.get("DirectoryRecordSequence", []):
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        listed.append(dicomdir.parent.joinpath(*parts))
    return listed


class _Walk:
    def __init__(self) -> None:
        self.found = FileList([], [])
        self._seen: set[Path] = set()

    def add(self, path: Path) -> None:
        key = path.absolute()
        if key not in self._seen:
            self._seen.add(key)
            self.found.files.append(path)

    def dicomdir(self, path: Path) -> None:
        """Add the files a DICOMDIR lists; the DICOMDIR itself is no instance."""
        try:
            listed = _listed(path)
        except (OSError, InvalidDicomError, ValueError, AttributeError) as exc:
            self.found.missing.append(Missing(str(path), f"DICOMDIR cannot be read: {exc}"))
            return
        self.found.dicomdirs += 1
        for file in listed:
            if file.is_file():
                self.add(file)
            else:
                self.found.missing.append(Missing(str(file), f"listed in {path}, not found"))

    def directory(self, top: Path) -> None:
        def failed(exc: OSError) -> None:
            where = exc.filename or str(top)
            self.found.missing.append(Missing(where, f"cannot be listed: {exc.strerror or exc}"))

        for parent, subdirectories, names in os.walk(top, onerror=failed):
            subdirectories.sort()
            here = Path(parent)
            names.sort()
            # The DICOMDIR first, so its files keep the order it gives them.
            for name in names:
                if _is_dicomdir(here / name):
                    self.dicomdir(here / name)
            for name in names:
                if not _is_dicomdir(here / name):
                    self.add(here / name)


def walk(paths: Sequence[Path]) -> FileList:
    """Every file under `paths` (directories recursively, DICOMDIRs read), each once."""
    walk = _Walk()
    for path in paths:
        if path.is_dir():
            walk.directory(path)
        elif _is_dicomdir(path) and path.is_file():
            walk.dicomdir(path)
        elif path.is_file():
            walk.add(path)
        else:
            walk.found.missing.append(Missing(str(path), "no such file or directory"))
    return walk.found
