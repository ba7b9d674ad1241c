"""How fast any S3-backed ingest can go on this machine, beside pacs on files and on S3.

The object store shares the machine's cores with the receiver and its clients, so it
bounds what the S3 backend can reach. This measures, in one interleaved run over 8
associations:

- `pacs`: pacs on the filesystem backend (the ratio's denominator);
- `pacs-s3`: pacs with the S3 backend on a moto server of its own (`benchmarks.s3_target`);
- `bound`: the calibration receiver at its lightest (`calib-plain`: receive, hash and
  write; no fsync, no header, no index) fed by the same storescu processes while, at the
  same time, 8 threads upload the same bytes to a fresh moto server through pacs's own S3
  store (`S3BlobStore.upload_body`: its client, a conditional create with the SHA-256). Its rate is
  instances over the time until both are done: an upper bound for any receiver that
  stores in that object store here, since it does strictly less than one would.

python -m benchmarks.s3_bound [--runs 3] [--kinds small,ct] [--scale full]
Needs the calibration receiver (benchmarks.calibration) and moto (the test extra).
"""

import argparse
import hashlib
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.dataset import Kind
from benchmarks.ingest import SCALES, make_datasets
from benchmarks.processes import free_port
from benchmarks.runs import Workload, run_once, send, split
from benchmarks.s3_server import MotoServer
from benchmarks.s3_target import CREDENTIALS
from benchmarks.servers import shutdown
from benchmarks.targets import TARGETS
from pacs.config_storage import S3Settings
from pacs.store.s3_store import S3BlobStore

ASSOCIATIONS = 8
BOUND = "bound"
TARGET_NAMES = ("pacs", "pacs-s3", BOUND)


def _put_all(endpoint: str, bodies: list[bytes]) -> None:
    """Each body up as pacs's S3 store uploads one held in memory (its own client and
    `upload_body`: a conditional create carrying the SHA-256), 8 at a time."""
    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)
    with (
        tempfile.TemporaryDirectory(prefix="s3-bound-root-") as root,
        ThreadPoolExecutor(ASSOCIATIONS) as pool,
    ):
        store = S3BlobStore(S3Settings(MotoServer.BUCKET, endpoint), Path(root), commits=pool)
        uploads = [pool.submit(store.upload_body, hashlib.sha256(b).hexdigest(), b) for b in bodies]
        for upload in uploads:
            upload.result()


def bound_once(files: list[Path], timeout: float) -> float:
    """Instances/s of calib-plain receiving `files` while their bytes go to moto."""
    bodies = [path.read_bytes() for path in files]
    moto = MotoServer(free_port())
    moto.run()
    try:
        with tempfile.TemporaryDirectory(prefix="s3-bound-") as tmp:
            receiver = TARGETS["calib-plain"].start(Path(tmp))
            try:
                uploads = threading.Thread(target=_put_all, args=(moto.endpoint, bodies))
                started = time.perf_counter()
                uploads.start()
                _, codes = send(receiver, split(files, ASSOCIATIONS), Path(tmp), timeout)
                uploads.join()
                seconds = time.perf_counter() - started
            finally:
                shutdown(receiver)
    finally:
        moto.stop()
    if any(codes):
        raise SystemExit(f"storescu exit codes {codes}")
    return len(files) / seconds


def measure(
    kinds: list[Kind], runs: int, timeout: float, scale: str = "full"
) -> dict[tuple[Kind, str], list[float]]:
    """Instances/s of every target, run by run, the targets interleaved."""
    rates: dict[tuple[Kind, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="s3-bound-data-") as tmp:
        data = make_datasets(scale, Path(tmp))
        for number in range(1, runs + 1):
            for kind in kinds:
                files = data[kind]
                workload = Workload(kind, len(files), ASSOCIATIONS)
                for target in TARGET_NAMES[:2]:
                    result = run_once(TARGETS[target], workload, files, number, timeout)
                    if result.error:
                        raise SystemExit(f"{target}: {result.error}")
                    rates.setdefault((kind, target), []).append(result.instances_per_second)
                rates.setdefault((kind, BOUND), []).append(bound_once(files, timeout))
                latest = [f"{t} {rates[(kind, t)][-1]:.0f}" for t in TARGET_NAMES]
                print(f"run {number}, {workload.name}: {', '.join(latest)} /s", flush=True)
    return rates


def table(rates: dict[tuple[Kind, str], list[float]], kinds: list[Kind], runs: int) -> str:
    """Medians, with each one's ratio to pacs on files."""
    lines = [
        f"{ASSOCIATIONS} associations, medians of {runs} runs, instances/s (ratio to files):",
        "| kind | pacs, files | pacs-s3 (moto) | bound: calib-plain + moto PUTs |",
        "|---|---:|---:|---:|",
    ]
    for kind in kinds:
        on_files = statistics.median(rates[(kind, "pacs")])
        cells = [f"{on_files:.0f}"]
        for target in TARGET_NAMES[1:]:
            rate = statistics.median(rates[(kind, target)])
            cells.append(f"{rate:.0f} ({rate / on_files:.2f}x)")
        lines.append(f"| {kind.value} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", default="small,ct")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--scale", choices=list(SCALES), default="full")
    args = parser.parse_args()
    for name in ("pacs", "pacs-s3", "calib-plain"):
        if (why := TARGETS[name].missing()) is not None:
            parser.error(f"{name}: {why}")
    kinds = [Kind(k) for k in args.kinds.split(",")]
    print(table(measure(kinds, args.runs, args.timeout, args.scale), kinds, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
