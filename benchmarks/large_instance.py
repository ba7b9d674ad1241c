"""Store one large multi-frame instance and report the server's peak memory.

The write path streams: a 1 GiB data set must pass through pacs without
ever sitting in memory. Usage: python -m benchmarks.large_instance [--mib 1024]
"""

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from benchmarks import dcmtk
from benchmarks.echo_rate import free_port, start_pacs, wait_for_port
from benchmarks.processes import DCMTK_ENV

MULTIFRAME_SC = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word Secondary Capture
FRAME_BYTES = 512 * 512 * 2


def write_large_instance(path: Path, mib: int) -> int:
    """Write a multi-frame instance of about `mib` MiB without building it in memory."""
    frames = max(1, mib * 1024 * 1024 // FRAME_BYTES)
    ds = Dataset()
    ds.SOPClassUID = MULTIFRAME_SC
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID = "Large^Instance", "LARGE-1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.StudyDate = "OT", "20261122"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 512
    ds.NumberOfFrames = frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    header = DicomBytesIO()
    dcmwrite(header, ds, enforce_file_format=True)
    length = frames * FRAME_BYTES
    noise = os.urandom(FRAME_BYTES)
    with path.open("wb") as fp:
        fp.write(header.getvalue())
        fp.write(b"\xe0\x7f\x10\x00OW\x00\x00" + length.to_bytes(4, "little"))
        for _ in range(frames):
            fp.write(noise)
    return path.stat().st_size


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024, help="size of the instance in MiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        size = write_large_instance(work / "large.dcm", args.mib)
        port = free_port()
        server = start_pacs(port, work)
        try:
            wait_for_port(port)
            idle = peak_rss_mib(server.pid)
            started = time.perf_counter()
            subprocess.run(
                [dcmtk.tool("storescu"), "127.0.0.1", str(port), str(work / "large.dcm")],
                check=True,
                env=DCMTK_ENV,
            )
            elapsed = time.perf_counter() - started
            peak = peak_rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        stored = [p for p in (work / "store").glob("??/*") if p.is_file()]
    print(f"instance: {size / 2**20:,.0f} MiB; stored files: {len(stored)}")
    print(f"time: {elapsed:.1f} s ({size / 2**20 / elapsed:,.0f} MiB/s)")
    print(f"server peak RSS: {peak:,.0f} MiB (after start-up: {idle:,.0f} MiB)")


if __name__ == "__main__":
    main()
