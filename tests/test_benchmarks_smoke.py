"""The benchmark harness keeps working: its dataset generator, and an ingest run at tiny scale."""

import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from benchmarks import dcmtk
from benchmarks.dataset import Kind, generate

ROOT = Path(__file__).resolve().parent.parent


def test_dataset_is_deterministic_and_well_formed(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", Kind.CT, 3, studies=2, patients=1, seed=7)
    again = generate(tmp_path / "b", Kind.CT, 3, studies=2, patients=1, seed=7)

    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    slices = [pydicom.dcmread(path) for path in first]
    assert [(ds.Rows, ds.Columns, ds.BitsAllocated) for ds in slices] == [(512, 512, 16)] * 3
    assert len({ds.StudyInstanceUID for ds in slices}) == 2
    assert len({ds.PatientID for ds in slices}) == 1
    assert slices[0].file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


@pytest.mark.dcmtk
@pytest.mark.skipif(dcmtk.find("storescu") is None, reason="DCMTK storescu is not installed")
def test_tiny_ingest_reports_a_positive_rate_for_every_target(tmp_path: Path) -> None:
    targets = ["pacs", *(["storescp"] if dcmtk.find("storescp") else [])]
    json_out, markdown_out = tmp_path / "ingest.json", tmp_path / "ingest.md"
    argv = [sys.executable, "-m", "benchmarks.ingest", "--scale", "tiny", "--runs", "1"]
    argv += ["--targets", ",".join(targets), "--json", str(json_out)]
    argv += ["--markdown", str(markdown_out), "--timeout", "60"]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=100, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "| workload | target | inst/s | MB/s | peak RSS MB |" in markdown_out.read_text()
    report = json.loads(json_out.read_text())
    rates = {(s["workload"], s["target"]): s["instances_per_second"] for s in report["summary"]}
    assert len(rates) == 4 * len(targets)
    assert {target for _, target in rates} == set(targets)
    assert all(rate > 0 for rate in rates.values()), rates
    assert all(run["stored"] == run["instances"] == 8 for run in report["runs"])
