"""Where a blob lives under a file store's root: one directory level, or two in older stores.

A store made by this version keeps each blob at `<root>/ab/<sha256>`, in one of 256
directories made with the store (the server's start-up probe, or the first blob): no blob
waits for a directory to be made
(on a young two-level store, nearly every blob was the first of its `ab/cd/`, and making a
directory, allocating its inode and syncing its parent, cost more than the blob itself).
Stores made before keep `<root>/ab/cd/<sha256>` and are read and written as they are; a
store tells which it is by what its first non-empty `ab/` directory holds: blobs, or
`cd/` directories (each made together with its `ab/`).
"""

import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path

_ADDRESS = re.compile(r"[0-9a-f]{64}")
_PREFIX = re.compile(r"[0-9a-f]{2}")
PREFIXES = tuple(f"{value:02x}" for value in range(256))


class BlobLayout(enum.Enum):
    """How many directory levels lie between a store's root and its blobs."""

    FLAT = "ab/<sha256>"
    NESTED = "ab/cd/<sha256>"

    def directory(self, root: Path, sha256: str) -> Path:
        """The directory the blob with this address lives in."""
        if not _ADDRESS.fullmatch(sha256):
            raise ValueError(f"not a lower-case SHA-256 hex digest: {sha256!r}")
        if self is BlobLayout.FLAT:
            return root / sha256[:2]
        return root / sha256[:2] / sha256[2:4]

    def path(self, root: Path, sha256: str) -> Path:
        """Where the blob with this address lives (whether or not it exists)."""
        return self.directory(root, sha256) / sha256


@dataclass(frozen=True, slots=True)
class BlobPaths:
    """Where one file store's blobs are; plain data, so worker processes can be sent it."""

    root: Path
    layout: BlobLayout

    def of(self, sha256: str) -> Path:
        """Where the blob with this address lives (whether or not it exists)."""
        return self.layout.path(self.root, sha256)

    def prefixes(self) -> list[str]:
        """The store's `ab/` directory names, sorted. Blocking."""
        return prefix_directories(self.root)

    def addresses(self, prefix: str) -> list[str]:
        """Every address stored under `<root>/<prefix>/`, sorted. Blocking."""
        top = self.root / prefix
        found = []
        for second in prefix_directories(top) if self.layout is BlobLayout.NESTED else [""]:
            start = prefix + second
            with os.scandir(top / second) as entries:
                found += [
                    entry.name
                    for entry in entries
                    if entry.name.startswith(start)
                    and _ADDRESS.fullmatch(entry.name)
                    and entry.is_file(follow_symlinks=False)
                ]
        found.sort()
        return found


def detect_layout(root: Path) -> BlobLayout:
    """The layout of the store at `root`: NESTED when its first non-empty `ab/` directory
    holds directories, else FLAT (also for an empty or missing root: a new store). Blocking."""
    for prefix in prefix_directories(root):
        try:
            entries = os.scandir(root / prefix)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            for entry in entries:
                nested = _PREFIX.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)
                return BlobLayout.NESTED if nested else BlobLayout.FLAT
    return BlobLayout.FLAT


def prefix_directories(directory: Path) -> list[str]:
    """The two-hex-digit subdirectory names of `directory`, sorted (none when it is missing)."""
    try:
        entries = os.scandir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    with entries:
        return sorted(
            entry.name
            for entry in entries
            if _PREFIX.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)
        )
