"""A directory that exported Part 10 files are written into (`pacs export`), outside the store."""

import os
from pathlib import Path

from pacs.errors import StoreUnavailable


class ExportDirectory:
    """Files written whole under `root`: each first as `<name>.part`, then renamed, so a file
    with its final name is complete. Blocking: callers use worker threads."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, data: bytes) -> None:
        """Write `data` as `root/name` (subdirectories made as needed), replacing a file there.

        StoreUnavailable when it cannot be written: the export stops there.
        """
        path = self.root / name
        partial = path.with_name(path.name + ".part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as file:
                file.write(data)
            os.replace(partial, path)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {path}: {exc.strerror or exc}") from exc
