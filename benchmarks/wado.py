"""WADO-RS benchmark: series metadata and single-frame latency (p50/p95), series retrieve MB/s
with the server's peak RSS, pacs beside Orthanc with its DICOMweb plugin, in one run.

Two CT series (512x512, 16-bit slices from benchmarks.dataset) of `--small` and `--large`
instances (by default 200 and 2,000: the large one is a 1 GB study) and one JPEG 2000
Lossless multi-frame instance are stored in each target with DCMTK storescu. Then, per
round and target in turn: the metadata of each series `--requests` times (the first
request of all, which builds pacs's kept response, is left out and reported apart), one
frame at a time as OHIF asks for it (`transfer-syntax=*`), native and encapsulated, and
the whole large series as stored, read and counted as it streams, with the server's peak
RSS meanwhile. Usage:
python -m benchmarks.wado [--small 200] [--large 2000] [--requests 50] [--rounds 2]
                          [--targets pacs,orthanc]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
from pydicom import dcmread
from pydicom.uid import JPEG2000Lossless, generate_uid

from benchmarks import dcmtk
from benchmarks.dataset import Kind, generate
from benchmarks.dicomweb_targets import WebTarget, start_orthanc_web, start_pacs_web
from benchmarks.preload import store
from benchmarks.processes import (
    DCMTK_ENV,
    PeakMemory,
    reset_peak,
)
from benchmarks.runs import CALLING_AE_TITLE
from benchmarks.servers import Server, shutdown

FRAME_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"
SERIES_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
ENCAPSULATED_FRAMES = 16


STARTS: dict[str, Callable[[Path], WebTarget]] = {
    "pacs": start_pacs_web,
    "orthanc": start_orthanc_web,
}


def _encapsulated(source: Path, out: Path) -> Path:
    """A JPEG 2000 Lossless multi-frame instance made of one CT slice's pixels."""
    ds = dcmread(source)
    frames = np.stack([ds.pixel_array] * ENCAPSULATED_FRAMES)
    ds.NumberOfFrames = ENCAPSULATED_FRAMES
    ds.SOPInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.compress(JPEG2000Lossless, frames)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = out / "j2k.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _store_as_is(server: Server, path: Path) -> None:
    """storescu proposing JPEG 2000 Lossless first (-xv), so the file goes as it is."""
    argv = [dcmtk.tool("storescu"), "-xv", "-aet", CALLING_AE_TITLE, "-aec", server.ae_title]
    argv += ["127.0.0.1", str(server.port), str(path)]
    done = subprocess.run(
        argv, check=False, env=DCMTK_ENV, capture_output=True, text=True, timeout=120
    )
    if done.returncode:
        raise RuntimeError(f"storescu -xv {path}: {done.stdout[-500:]}{done.stderr[-500:]}")


@dataclass(frozen=True, slots=True)
class Data:
    small: list[Path]
    large: list[Path]
    j2k: Path

    def uids(self, path: Path) -> tuple[str, str, str]:
        ds = dcmread(path, stop_before_pixels=True)
        return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def _make_data(root: Path, small: int, large: int) -> Data:
    small_files = generate(root / "small", Kind.CT, small, studies=1, patients=1, seed=11)
    large_files = generate(root / "large", Kind.CT, large, studies=1, patients=1, seed=12)
    (root / "j2k").mkdir()
    return Data(small_files, large_files, _encapsulated(small_files[0], root / "j2k"))


def _times(session: requests.Session, url: str, accept: str, count: int) -> list[float]:
    """Seconds of each of `count` GETs, until the body is read whole as sent (gzip allowed,
    not inflated: the client's own inflating is not the server's time)."""
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, headers={"Accept": accept}, stream=True)
        response.raw.read(decode_content=False)
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:200]}")
    return seconds


def _p(values: Sequence[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def _retrieve(session: requests.Session, target: WebTarget, url: str) -> tuple[float, float, float]:
    """Seconds, MB and peak RSS (MB) of one whole-series retrieve as stored."""
    reset_peak(target.server.process.pid)  # the peak of this retrieve, not of what went before
    with PeakMemory(target.server.process.pid) as memory:
        started = time.perf_counter()
        size = 0
        with session.get(url, headers={"Accept": SERIES_ACCEPT}, stream=True) as response:
            response.raise_for_status()
            for chunk in response.iter_content(1024 * 1024):
                size += len(chunk)
        seconds = time.perf_counter() - started
    return seconds, size / 1e6, memory.peak_mb()


def _round(
    target: WebTarget, data: Data, requests_per_case: int, figures: dict[str, list[float]]
) -> None:
    session = requests.Session()
    for label, files in (("small", data.small), ("large", data.large)):
        study, series, _ = data.uids(files[0])
        url = f"{target.base_url}/studies/{study}/series/{series}/metadata"
        first = _times(session, url, "application/dicom+json", 1)
        figures.setdefault(f"metadata {label} first", []).extend(first)
        times = _times(session, url, "application/dicom+json", requests_per_case)
        figures.setdefault(f"metadata {label}", []).extend(times)
    for label, path in (("native", data.small[len(data.small) // 2]), ("encapsulated", data.j2k)):
        study, series, sop = data.uids(path)
        instance = f"{target.base_url}/studies/{study}/series/{series}/instances/{sop}"
        times = []
        for n in range(requests_per_case):
            frame = n % ENCAPSULATED_FRAMES + 1 if label == "encapsulated" else 1
            times += _times(session, f"{instance}/frames/{frame}", FRAME_ACCEPT, 1)
        figures.setdefault(f"frame {label}", []).extend(times)
    study, series, _ = data.uids(data.large[0])
    seconds, mb, peak = _retrieve(
        session, target, f"{target.base_url}/studies/{study}/series/{series}"
    )
    figures.setdefault("series MB/s", []).append(mb / seconds)
    figures.setdefault("series MB", []).append(mb)
    figures.setdefault("series peak RSS MB", []).append(peak)


def _report(results: dict[str, dict[str, list[float]]]) -> str:
    lines = ["| case | " + " | ".join(results) + " |", "|---" * (len(results) + 1) + "|"]
    cases = next(iter(results.values())).keys()
    for case in cases:
        cells = []
        for figures in results.values():
            values = figures.get(case, [])
            if not values:
                cells.append("-")
            elif case.startswith(("metadata", "frame")) and len(values) > 2:
                cells.append(f"p50 {_p(values, 50):.1f} ms, p95 {_p(values, 95):.1f} ms")
            elif case.startswith(("metadata", "frame")):
                cells.append(f"{max(values) * 1000:.0f} ms")
            else:
                cells.append(f"{statistics.median(values):.1f}")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--targets", default="pacs,orthanc")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wado-bench-") as tmp:
        root = Path(tmp)
        data = _make_data(root / "data", args.small, args.large)
        targets = []
        try:
            for name in args.targets.split(","):
                (root / name).mkdir()
                target = STARTS[name](root / name)
                targets.append(target)
                inputs = [data.small, data.large]
                seconds, codes = store(target.server, inputs, root / name / "logs", 3600)
                print(f"{name}: stored in {seconds:.1f} s (storescu exit codes {codes})")
                _store_as_is(target.server, data.j2k)
            results: dict[str, dict[str, list[float]]] = {t.name: {} for t in targets}
            for _ in range(args.rounds):
                for target in targets:
                    _round(target, data, args.requests, results[target.name])
        finally:
            for target in targets:
                shutdown(target.server)
    print(_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
