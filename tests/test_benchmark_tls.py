"""The TLS benchmark runs at a tiny scale and reports every figure and every bad-input case."""

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import dcmtk

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.benchmark_smoke
@pytest.mark.dcmtk
@pytest.mark.timeout(200)
@pytest.mark.skipif(
    any(dcmtk.find(tool) is None for tool in ("storescu", "echoscu")),
    reason="DCMTK storescu or echoscu is not installed",
)
def test_tiny_tls_benchmark_reports_ratios_and_refusals() -> None:
    argv = [sys.executable, "-m", "benchmarks.tls", "--instances", "4", "--runs", "1"]
    argv += ["--associations", "1", "--echo-associations", "5"]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rows = {
        line.split(" | ")[0].strip("| "): line
        for line in result.stdout.splitlines()
        if line.startswith("| ")
    }
    assert rows["CT ingest, inst/s"].count("|") == 5
    assert rows["associations/s (open, echo, release)"].count("|") == 5
    cases = [row for row in rows.values() if "TLS connection with 127.0.0.1:" in row]
    assert len(cases) == 8, result.stdout
    assert all("| refused (exit" in row or "| closed by pacs |" in row for row in cases), cases
