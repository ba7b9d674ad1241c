"""De-identification rate: instances/s of CPU time, for small and CT instances, per profile.

Each instance is read from its Part 10 bytes, de-identified and written back as Part 10
(what an export or a retrieve would do in a worker thread), and the de-identification
step alone is timed too. CPU time (time.process_time) rather than wall time, since the
machine is shared. Usage: python -m benchmarks.deidentify_rate [--count 200] [--repeat 3]
"""

import argparse
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from benchmarks.dataset import Kind, generate
from pacs.dicom.deidentify import Dates, Deidentifier, Profile

PROFILES = {"basic": Profile(), "shift-dates": Profile(name="shifted", dates=Dates.SHIFT)}


def _read(data: bytes, kind: Kind) -> Dataset:
    ds = dcmread(BytesIO(data))
    if kind is Kind.SMALL:
        ds.BurnedInAnnotation = "NO"  # a generated gradient: no text in the pixels
    return ds


def _write(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _cpu_rate(step: Callable[[bytes], object], files: list[bytes], repeat: int) -> float:
    """The best of `repeat` passes, in instances per CPU second."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for data in files:
            step(data)
        best = min(best, time.process_time() - start)
    return len(files) / best if best > 0 else float("inf")


def measure(kind: Kind, count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        files = [path.read_bytes() for path in generate(Path(work), kind, count, studies=4)]
    size = sum(map(len, files)) / len(files)
    read_only = _cpu_rate(lambda data: _read(data, kind), files, repeat)
    for name, profile in PROFILES.items():
        deidentifier = Deidentifier(profile, b"benchmark secret")

        def pipeline(data: bytes, deidentify: Deidentifier = deidentifier) -> bytes:
            return _write(deidentify(_read(data, kind)))

        whole = _cpu_rate(pipeline, files, repeat)
        parsed = [_read(data, kind) for data in files]
        start = time.process_time()
        for ds in parsed:
            deidentifier(ds)
        alone = len(parsed) / max(time.process_time() - start, 1e-9)
        print(
            f"{kind.value:5} ({size / 1024:6.0f} KiB) {name:11}  read+de-identify+write "
            f"{whole:7.0f} inst/s   de-identify alone {alone:7.0f} inst/s   "
            f"(read alone {read_only:7.0f} inst/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200, help="instances of each kind")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best one counts")
    args = parser.parse_args()
    for kind in (Kind.SMALL, Kind.CT):
        measure(kind, args.count, args.repeat)


if __name__ == "__main__":
    main()
