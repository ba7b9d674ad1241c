"""The benchmark harness keeps working: its dataset generators, and ingest, retrieve and query
runs at tiny scale."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from benchmarks import dcmtk
from benchmarks.dataset import Kind, generate
from benchmarks.population import MODALITIES, Study, studies
from benchmarks.query_mix import check, make_cases

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


def test_population_grows_by_appending_studies() -> None:
    fewer, more = list(studies(3, 20, 10)), list(studies(3, 50, 10))

    assert more[:20] == fewer
    assert all(study.instances == 10 for study in more)
    assert {m for study in more for m in study.modalities} <= set(MODALITIES)
    assert len({study.accession for study in more}) == 50


def test_query_cases_know_their_answers_and_spot_wrong_ones() -> None:
    population = list(studies(5, 40, 10))
    cases = make_cases(population, repeats=3, seed=5)
    by_id = next(case for case in cases if case.query == "PatientID exact")
    right = [_study_response(population, uid) for uid in by_id.expected]

    assert {case.query for case in cases} >= {"ModalitiesInStudy", "instances of a series"}
    assert by_id.identifier.PatientID == by_id.value
    assert check(by_id, right) == ()
    assert check(by_id, [*right[1:], right[0], right[0]])[0].startswith("1 duplicate")
    assert "expected match(es) missing" in check(by_id, right[1:])[0]


def _study_response(population: list[Study], uid: str) -> Dataset:
    study = next(s for s in population if s.uid == uid)
    ds = Dataset()
    ds.StudyInstanceUID = uid
    ds.PatientID, ds.AccessionNumber, ds.StudyDate = (
        study.patient.patient_id,
        study.accession,
        study.date,
    )
    ds.ModalitiesInStudy = sorted(study.modalities, reverse=True)  # order is not significant
    ds.NumberOfStudyRelatedSeries = len(study.series)
    ds.NumberOfStudyRelatedInstances = study.instances
    return ds


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


def _run_benchmark(module: str, tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    """Run `python -m benchmarks.<module>` at tiny scale, once, against pacs only."""
    json_out, markdown_out = tmp_path / f"{module}.json", tmp_path / f"{module}.md"
    argv = [sys.executable, "-m", f"benchmarks.{module}", "--scale", "tiny", "--runs", "1"]
    argv += ["--targets", "pacs", "--json", str(json_out), "--markdown", str(markdown_out)]
    result = subprocess.run(
        [*argv, *extra], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return json.loads(json_out.read_text()), markdown_out.read_text()


@pytest.mark.dcmtk
@pytest.mark.skipif(
    any(dcmtk.find(tool) is None for tool in ("storescu", "storescp", "movescu", "getscu")),
    reason="DCMTK storescu, storescp, movescu or getscu is not installed",
)
def test_tiny_retrieve_reports_positive_rates_for_move_and_get(tmp_path: Path) -> None:
    report, table = _run_benchmark("retrieve", tmp_path)

    assert "| C-MOVE CT 512x512 16-bit x8, one study | pacs |" in table
    rates = {s["workload"]: s["instances_per_second"] for s in report["summary"]}
    assert set(rates) == {
        "C-MOVE CT 512x512 16-bit x8, one study",
        "C-GET CT 512x512 16-bit x8, one study",
    }
    assert all(rate > 0 for rate in rates.values()), rates
    assert all(run["stored"] == run["instances"] == 8 for run in report["runs"])
    assert all(s["peak_rss_mb"] > 0 for s in report["summary"])


@pytest.mark.dcmtk
@pytest.mark.skipif(dcmtk.find("storescu") is None, reason="DCMTK storescu is not installed")
def test_tiny_query_reports_a_latency_for_every_query_at_both_sizes(tmp_path: Path) -> None:
    report, table = _run_benchmark("query", tmp_path)

    assert "| population | query | target | p50 ms | p95 ms |" in table
    assert [load["error"] for load in report["loads"]] == [None, None]
    assert report["loads"][-1]["held"] == 300
    latencies = report["latency"]
    assert {cell["query"] for cell in latencies} == {
        "PatientID exact",
        "PatientName prefix",
        "StudyDate one month",
        "ModalitiesInStudy",
        "AccessionNumber",
        "series of a study",
        "instances of a series",
    }
    assert len(latencies) == 2 * 7  # two population sizes
    assert all(0 < cell["p50_ms"] <= cell["p95_ms"] for cell in latencies), latencies
    assert all(cell["mean_matches"] >= 0 for cell in latencies)
