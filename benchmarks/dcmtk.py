"""Find DCMTK's command-line tools, not pynetdicom's apps of the same names."""

import os
import shutil
import sys
from pathlib import Path


def find(name: str) -> str | None:
    """Path of DCMTK's `name` on PATH, skipping virtual environments' bin directories.

    pynetdicom installs Python apps called echoscu, storescu, storescp... into
    every virtual environment it is installed in, this interpreter's or another
    one left on PATH; the tests and benchmarks want DCMTK's.
    """
    own_bin = Path(sys.executable).parent.resolve()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or Path(directory).resolve() == own_bin:
            continue
        if (Path(directory).parent / "pyvenv.cfg").exists():
            continue
        if found := shutil.which(name, path=directory):
            return found
    return None


def tool(name: str) -> str:
    """Like `find`, but the bare name when DCMTK is absent (the command then fails clearly)."""
    return find(name) or name
