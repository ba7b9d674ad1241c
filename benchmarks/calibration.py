"""The calibration receiver as ingest targets: what this stack can reach, as a yardstick.

The receiver (`fast_scp.py`, a measuring instrument kept outside this repository) is a
bare asyncio C-STORE SCP: pynetdicom negotiates the association, the rest is by hand.
It runs as a peer process, like Orthanc, from the path in PACS_CALIBRATION_SCP, by
default `../shared/calibration/fast_scp.py` beside this checkout. Its variants:

- calib-durable: as pacs acknowledges a store: file, rename and directories fsynced,
  the header read with pydicom, one SQLite index (WAL, synchronous=FULL) group-committed
  after the file is durable; blobs at `<root>/ab/cd/<sha256>`.
- calib-raw: the same durability, the header read by a small scanner of element headers
  and the 256 blob directories (`<root>/ab/<sha256>`) made at start.
- calib-plain: receive, hash and write; no fsync, no header, no index.
"""

import hashlib
import os
import sys
from functools import partial
from pathlib import Path

from benchmarks.processes import free_port, launch, wait_for_port
from benchmarks.servers import Server, Target, count_files

ENV_VARIABLE = "PACS_CALIBRATION_SCP"
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared" / "calibration" / "fast_scp.py"
START_TIMEOUT = 60.0
AE_TITLE = "FASTSCP"

# Target name -> (fast_scp options, whether blobs sit two directory levels deep).
VARIANTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "calib-durable": (("--fsync", "--header", "--sqlite", "{index}"), True),
    "calib-raw": (("--fsync", "--header=raw", "--sqlite", "{index}", "--fanout", "1"), False),
    "calib-plain": ((), True),
}


def receiver() -> Path | None:
    """The receiver's script, if there is one where the environment (or default) says."""
    configured = os.environ.get(ENV_VARIABLE)
    path = Path(configured) if configured else DEFAULT_PATH
    return path if path.is_file() else None


def _missing() -> str | None:
    if receiver() is not None:
        return None
    where = os.environ.get(ENV_VARIABLE) or str(DEFAULT_PATH)
    return f"calibration receiver not found at {where} (set {ENV_VARIABLE})"


def _version(options: tuple[str, ...]) -> str:
    script = receiver()
    if script is None:
        return "not available"
    digest = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    flags = " ".join(options).replace("{index}", "DB") or "(no options)"
    return f"{script} sha256:{digest} {flags}"


def start(name: str, workdir: Path) -> Server:
    """The `name` variant of the receiver, empty, storing under `workdir/store`."""
    script = receiver()
    if script is None:
        raise FileNotFoundError(_missing())
    options, two_levels = VARIANTS[name]
    port, root = free_port(), workdir / "store"
    index = str(workdir / "index.sqlite")
    argv = [sys.executable, str(script), str(port), str(root)]
    argv += [option.replace("{index}", index) for option in options]
    log = workdir / f"{name}.log"
    process = launch(argv, log, cwd=workdir)
    wait_for_port(process, port, log, START_TIMEOUT)
    # The staging directory is `.staging`, which neither pattern matches.
    stored = count_files(root, "??/??/*" if two_levels else "??/*")
    return Server(process, port, AE_TITLE, stored, log)


TARGETS = {
    name: Target(name, _missing, partial(start, name), partial(_version, options))
    for name, (options, _) in VARIANTS.items()
}
