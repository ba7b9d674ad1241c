"""CPU per received instance of the header work on the C-STORE path: pydicom's path against
the one-walk scan, each with the index record built from its result.

The instances are the benchmark generator's (distinct UIDs, positions and pixels per
instance), held in memory as ingest holds an instance below its flush size, cycled so
that repeated values hit the converters' caches as a series does in a real run. The two
paths run in alternating rounds in one process; printed: CPU microseconds per instance
(time.process_time), the median over rounds.

python -m benchmarks.header_path [--kind small|ct] [--instances 64] [--calls 4000] [--rounds 5]
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from benchmarks.dataset import Kind, generate
from pacs.archive.records import record_for
from pacs.dicom.header import check_identity, read_header, split_by_level
from pacs.dicom.header_scan import read_levels
from pacs.dicom.part10 import seek_data_set
from pacs.index.records import StoredBlob
from pacs.store.blobstore import BlobRef

Instance = tuple[bytes, str, str, str]
BLOB: StoredBlob = BlobRef("0" * 64, 1)


def _instances(kind: Kind, count: int) -> list[Instance]:
    with tempfile.TemporaryDirectory() as out:
        instances = []
        for path in generate(Path(out), kind, count, studies=2, patients=2):
            with path.open("rb") as fp:
                start = seek_data_set(fp)
                data = fp.read()
            dataset = read_header(BytesIO(data), start.transfer_syntax_uid)
            uids = (str(dataset.SOPClassUID), str(dataset.SOPInstanceUID))
            instances.append((data, start.transfer_syntax_uid, *uids))
        return instances


def pydicom_path(data: bytes, syntax: str, sop_class: str, sop_instance: str) -> Any:
    """What ingest did before the scan: check, parse, compare, split, record."""
    dataset = read_header(BytesIO(data), syntax)
    check_identity(dataset, sop_class, sop_instance)
    return record_for(split_by_level(dataset), syntax, BLOB, "BENCH")


def scan_path(data: bytes, syntax: str, sop_class: str, sop_instance: str) -> Any:
    """What ingest does now."""
    return record_for(read_levels(data, syntax, sop_class, sop_instance), syntax, BLOB, "BENCH")


def _cpu_per_call(path: Callable[..., Any], instances: list[Instance], calls: int) -> float:
    start = time.process_time()
    for index in range(calls):
        path(*instances[index % len(instances)])
    return (time.process_time() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=[k.value for k in Kind], default=Kind.SMALL.value)
    parser.add_argument("--instances", type=int, default=64)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    instances = _instances(Kind(args.kind), args.instances)
    for data, syntax, *uids in instances:
        assert pydicom_path(data, syntax, *uids) == scan_path(data, syntax, *uids)
    paths = {"pydicom": pydicom_path, "scan": scan_path}
    rounds: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, path in paths.items():
            rounds[name].append(_cpu_per_call(path, instances, args.calls))
    medians = {name: statistics.median(times) * 1e6 for name, times in rounds.items()}
    size = statistics.mean(len(data) for data, *_ in instances)
    print(f"{args.kind}: {len(instances)} instances of {size / 1024:.0f} KiB, {args.calls} calls")
    for name, micros in medians.items():
        print(f"  {name:8} {micros:8.1f} us CPU per instance")
    print(f"  ratio    {medians['pydicom'] / medians['scan']:8.2f}x")


if __name__ == "__main__":
    main()
