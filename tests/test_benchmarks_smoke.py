"""The benchmark harness keeps working: its dataset generators, an ingest run, and the one
command that runs ingest, query and retrieve, all at tiny scale. The runs take minutes, so
they are marked benchmark_smoke: left out of a plain `pytest`, run by `.ci/run` on purpose."""

import json
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from benchmarks import dcmtk, scale_load
from benchmarks.dataset import Kind, generate
from benchmarks.population import MODALITIES, Study, studies
from benchmarks.preload import store
from benchmarks.query_mix import check, make_cases
from benchmarks.scale_population import scale_studies
from benchmarks.scale_rows import RowBuilder, batches, instance_dataset
from benchmarks.servers import shutdown
from benchmarks.targets import start_pacs

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


@pytest.mark.benchmark_smoke
@pytest.mark.dcmtk
@pytest.mark.postgres
@pytest.mark.timeout(330)
@pytest.mark.skipif(dcmtk.find("storescu") is None, reason="DCMTK storescu is not installed")
def test_tiny_ingest_reports_a_rate_for_every_target_up_to_eight_associations(
    tmp_path: Path,
) -> None:
    # pacs on SQLite runs in the whole-suite test below.
    targets = ["pacs-pg", "pacs-pg-2w", "pacs-s3"]
    targets += ["storescp"] if dcmtk.find("storescp") else []
    json_out, markdown_out = tmp_path / "ingest.json", tmp_path / "ingest.md"
    argv = [sys.executable, "-m", "benchmarks.ingest", "--scale", "tiny", "--runs", "1"]
    argv += ["--targets", ",".join(targets), "--json", str(json_out)]
    argv += ["--markdown", str(markdown_out), "--timeout", "60"]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "| workload | target | inst/s | MB/s | peak RSS MB |" in markdown_out.read_text()
    report = json.loads(json_out.read_text())
    assert report["skipped"] == {}
    rates = {(s["workload"], s["target"]): s["instances_per_second"] for s in report["summary"]}
    assert {workload for workload, _ in rates} == {
        f"{kind} x8, {associations}"
        for kind in ("SC 64x64 8-bit", "CT 512x512 16-bit")
        for associations in ("1 association", "4 associations", "8 associations")
    } | {"SC 64x64 8-bit x8, 1 association, storescu defaults (Nagle on)"}
    assert {target for _, target in rates} == set(targets)
    assert len(rates) == 7 * len(targets)
    assert all(rate > 0 for rate in rates.values()), rates
    assert all(run["stored"] == run["instances"] == 8 for run in report["runs"])


@pytest.mark.benchmark_smoke
@pytest.mark.dcmtk
@pytest.mark.timeout(660)
@pytest.mark.skipif(
    any(dcmtk.find(tool) is None for tool in ("storescu", "storescp", "movescu", "getscu")),
    reason="DCMTK storescu, storescp, movescu or getscu is not installed",
)
def test_one_command_runs_every_benchmark_and_summarises_them(tmp_path: Path) -> None:
    out = tmp_path / "results"
    argv = [sys.executable, "-m", "benchmarks", "--scale", "tiny", "--runs", "1"]
    argv += ["--targets", "pacs", "--out", str(out)]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_status"] == {"ingest": 0, "query": 0, "retrieve": 0}
    _check_ingest(summary["ingest"])
    _check_query(summary["query"])
    _check_retrieve(summary["retrieve"])
    table = (out / "summary.md").read_text()
    assert [line for line in table.splitlines() if line.startswith("## ")] == [
        "## Ingest",
        "## Query",
        "## Retrieve",
    ]
    assert f"Machine: {os.cpu_count()} cores" in table
    assert "-m benchmarks --scale tiny --runs 1 --targets pacs --out" in table
    assert "| SC 64x64 8-bit x8, 8 associations | pacs |" in table
    assert "| population | query | target | p50 ms | p95 ms |" in table
    assert "| C-MOVE CT 512x512 16-bit x8, one study | pacs |" in table


def _check_ingest(report: dict[str, Any]) -> None:
    rates = {s["workload"]: s["instances_per_second"] for s in report["summary"]}
    assert {s["target"] for s in report["summary"]} == {"pacs"}
    assert len(rates) == 7  # two kinds, over 1, 4 and 8 associations; storescu's defaults
    assert all(rate > 0 for rate in rates.values()), rates
    assert all(run["stored"] == run["instances"] == 8 for run in report["runs"])


def _check_retrieve(report: dict[str, Any]) -> None:
    rates = {(s["workload"], s["target"]): s["instances_per_second"] for s in report["summary"]}
    # The ceiling: the move destination fed by storescu, what any C-MOVE is bounded by.
    assert set(rates) == {
        ("C-MOVE CT 512x512 16-bit x8, one study", "ceiling"),
        ("C-MOVE CT 512x512 16-bit x8, one study", "pacs"),
        ("C-GET CT 512x512 16-bit x8, one study", "pacs"),
        ("C-GET (getscu defaults, Nagle on) CT 512x512 16-bit x8, one study", "pacs"),
    }
    assert all(rate > 0 for rate in rates.values()), rates
    assert all(run["stored"] == run["instances"] == 8 for run in report["runs"])
    assert all(s["peak_rss_mb"] > 0 for s in report["summary"] if s["target"] == "pacs")


def _check_query(report: dict[str, Any]) -> None:
    assert [load["error"] for load in report["loads"]] == [None, None]
    assert report["loads"][-1]["held"] == 300
    latencies = report["latency"]
    assert {cell["target"] for cell in latencies} == {"pacs"}
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
    assert report["wrong_answers"] == []  # the exit status does not count wrong answers


@pytest.mark.benchmark_smoke
@pytest.mark.timeout(120)
def test_s3_clients_prints_put_and_get_rates_of_obstore() -> None:
    argv = [sys.executable, "-m", "benchmarks.s3_clients", "--objects", "4", "--runs", "1"]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rates = re.findall(
        r"obstore \((threads|async)\)\s+PUT\s+([\d.]+)\s+GET\s+([\d.]+)", result.stdout
    )
    assert [kind for kind, _, _ in rates] == ["threads", "async"], result.stdout
    assert all(float(put) > 0 and float(get) > 0 for _, put, get in rates)


@pytest.mark.benchmark_smoke
@pytest.mark.dcmtk
@pytest.mark.timeout(120)
@pytest.mark.skipif(dcmtk.find("storescu") is None, reason="DCMTK storescu is not installed")
def test_verify_rate_reports_a_cold_and_a_warm_rate_and_the_peak_memory() -> None:
    argv = [sys.executable, "-m", "benchmarks.verify_rate", "--count", "4"]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == f"archive: 4 CT instances, {os.cpu_count()} cores"
    assert [line.split(":")[0].split(" (")[0] for line in lines[1:]] == ["cold", "warm"]
    assert all(" 4 blobs, " in line and " MB/s; peak RSS " in line for line in lines[1:])


@pytest.mark.benchmark_smoke
def test_deidentify_rate_and_table_scripts_print_their_figures() -> None:
    argv = [sys.executable, "-m", "benchmarks.deidentify_rate", "--count", "4", "--repeat", "1"]
    rate = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    table_argv = [sys.executable, "-m", "benchmarks.deidentify_table"]
    table = subprocess.run(table_argv, cwd=ROOT, capture_output=True, text=True, check=True)

    assert len([line for line in rate.splitlines() if "inst/s" in line]) == 4
    lines = table.stdout.splitlines()
    assert lines[0].startswith("Table E.1-1: 656 attributes")
    assert lines[1].startswith("  PS3.15 2020 (dicom-standard 0.1.0): ")
    assert lines[2].startswith("  PS3.15 2026c (dicom_anonymizer 2.1.0): ")
    disagreements = int(lines[3].removeprefix("Disagreements: "))
    assert all(" kept " in line for line in lines[4 : 4 + disagreements])


@pytest.mark.benchmark_smoke
def test_reindex_rate_reports_a_rate_for_each_number_of_parsing_workers() -> None:
    argv = [sys.executable, "-m", "benchmarks.reindex_rate", "--count", "20"]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == f"archive: 20 small instances, sqlite, {os.cpu_count()} cores"
    assert [line.split(":")[0] for line in lines[1:]] == [
        f"reindex --workers {n}" for n in (0, 1, os.cpu_count() or 1)
    ]
    assert all(": 20 instances in " in line and "peak RSS" in line for line in lines[1:])


@pytest.mark.benchmark_smoke
def test_import_rate_reports_storescu_then_two_imports() -> None:
    argv = [sys.executable, "-m", "benchmarks.import_rate", "--count", "20"]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[1].startswith("storescu -> serve: ")
    assert lines[2].startswith("import: ")
    assert " 20 stored, 0 already stored" in lines[3]
    assert lines[4].startswith("import again (all skipped): ")
    assert " 0 stored, 20 already stored" in lines[5]


@pytest.mark.dcmtk
@pytest.mark.postgres
@pytest.mark.timeout(330)
@pytest.mark.skipif(
    any(dcmtk.find(tool) is None for tool in ("storescu", "getscu")),
    reason="DCMTK storescu or getscu is not installed",
)
def test_tiny_scale_run_generates_rows_that_answer_like_ingested_ones(tmp_path: Path) -> None:
    json_out = tmp_path / "scale.json"
    argv = [sys.executable, "-m", "benchmarks.scale", "--scale", "tiny", "--runs", "1"]
    argv += ["--repeats", "3", "--json", str(json_out), "--markdown", str(tmp_path / "scale.md")]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=320, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(json_out.read_text())
    assert report["population"]["instances"] == 2_000
    for target in ("pacs", "pacs-pg"):
        assert report[target]["fill"]["instances"] == 2_000
        assert report[target]["sample"]["problems"] == []
        assert report[target]["sample"]["instances"] > 0
        assert all(rate > 0 for rates in report[target]["ingest"].values() for rate in rates)
        queries = {q["query"]: q for q in report[target]["queries"]}
        assert "PatientName *SMI* (cut)" in queries
        assert all(q["problems"] == [] and q["count"] == 3 for q in queries.values()), queries


@pytest.mark.benchmark_smoke
@pytest.mark.dcmtk
@pytest.mark.timeout(120)
@pytest.mark.skipif(dcmtk.find("storescu") is None, reason="DCMTK storescu is not installed")
def test_generated_rows_are_the_rows_ingest_writes(tmp_path: Path) -> None:
    population = list(scale_studies(9, 40))
    generated = tmp_path / "generated.sqlite"
    scale_load.migrate(f"sqlite+aiosqlite:///{generated}")
    scale_load.load_sqlite(generated, batches(RowBuilder(), population, lambda _: None))
    files = tmp_path / "files"
    files.mkdir()
    for study in population:
        for series in study.series:
            for number in range(1, series.instances + 1):
                ds = instance_dataset(study, series, number)
                ds.save_as(files / f"{series.uid}.{number}.dcm", enforce_file_format=True)
    (tmp_path / "pacs").mkdir()
    server = start_pacs(tmp_path / "pacs")
    try:
        _, codes = store(server, [[files]], tmp_path / "logs", timeout=60)
    finally:
        shutdown(server)

    assert codes == [0]
    assert _rows(generated) == _rows(tmp_path / "pacs" / "index.sqlite")


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows without ids, times and file references, parents named by UID."""
    queries = {
        "patient": "SELECT patient_id, patient_name, patient_name_folded, patient_birth_date, "
        "patient_sex, attributes FROM patient ORDER BY patient_id",
        "study": "SELECT s.study_instance_uid, p.patient_id, study_date, study_time, "
        "accession_number, study_id, referring_physician_name_folded, study_description, "
        "modalities_in_study, sop_classes_in_study, number_of_series, number_of_instances, "
        "s.attributes FROM study s JOIN patient p ON p.id = s.patient_fk ORDER BY 1",
        "series": "SELECT series_instance_uid, s.study_instance_uid, modality, series_number, "
        "series_description, series_date, body_part_examined, r.number_of_instances, "
        "r.attributes FROM series r JOIN study s ON s.id = r.study_fk ORDER BY 1",
        "instance": "SELECT sop_instance_uid, r.series_instance_uid, sop_class_uid, "
        "instance_number, transfer_syntax_uid, i.attributes FROM instance i "
        "JOIN series r ON r.id = i.series_fk ORDER BY 1",
    }
    with closing(sqlite3.connect(path)) as conn:
        return {
            table: [(*row[:-1], json.loads(row[-1])) for row in conn.execute(query)]
            for table, query in queries.items()
        }


def test_deidentify_transfer_prints_move_and_export_rates() -> None:
    argv = [sys.executable, "-m", "benchmarks.deidentify_transfer", "--small", "4", "--ct", "2"]
    result = subprocess.run(
        [*argv, "--repeat", "1"], cwd=ROOT, capture_output=True, text=True, check=True
    )

    lines = [line.split(" inst/s")[0].split() for line in result.stdout.splitlines()]
    rows = [(" ".join(words[:-1]), words[-1]) for words in lines if words[0] != "small"]
    rows = [row for row in rows if not row[0].startswith("ct ")]
    labels = ["C-MOVE as stored", "C-MOVE de-identified", "export de-identified"]
    assert [label for label, _ in rows] == labels * 2
    assert all(rate.isdigit() and int(rate) > 0 for _, rate in rows)


@pytest.mark.benchmark_smoke
@pytest.mark.dcmtk
@pytest.mark.timeout(300)
@pytest.mark.skipif(dcmtk.find("storescu") is None, reason="DCMTK storescu is not installed")
def test_dicomweb_benchmark_measures_every_figure_and_gets_the_searches_right(
    tmp_path: Path,
) -> None:
    # pacs only: Orthanc's DICOMweb plugin is not among CI's packages.
    json_out = tmp_path / "dicomweb.json"
    argv = [
        sys.executable,
        "-m",
        "benchmarks.dicomweb_compare",
        "--scale",
        "tiny",
        "--targets",
        "pacs",
    ]

    result = subprocess.run(
        [*argv, "--json", str(json_out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "| series metadata, 16 CT instances | p95 ms |" in result.stdout
    figures = json.loads(json_out.read_text())["targets"]["pacs"]
    assert figures["wrong_answers"] == []
    assert set(figures["metadata"]) == {"8", "16"}
    assert set(figures["frame"]) == {"native", "jpeg2000"}
    latencies = [*figures["metadata"].values(), *figures["frame"].values()]
    latencies += [q for size in figures["qido"].values() for q in size.values()]
    assert len(latencies) == 2 + 2 + 2 * 3
    assert all(0 < cell["p50_ms"] <= cell["p95_ms"] for cell in latencies), latencies
    assert figures["retrieve"]["mb"] > 8 * 0.5 and figures["retrieve"]["peak_rss_mb"] > 0
    assert figures["stow"]["instances"] == 20 and figures["stow"]["instances_per_s"] > 0
    assert figures["ingest"]["alone_per_s"] > 0 and figures["ingest"]["viewed_per_s"] > 0


@pytest.mark.benchmark_smoke
@pytest.mark.timeout(200)
def test_tiny_dicomweb_run_times_every_search_and_reports_stow_rates(tmp_path: Path) -> None:
    json_out = tmp_path / "dicomweb.json"
    argv = [sys.executable, "-m", "benchmarks.dicomweb", "--scales", "600", "--targets", "pacs"]
    argv += ["--repeats", "2", "--stow", "6", "--runs", "1", "--json", str(json_out)]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(json_out.read_text())
    searches = report["qido"]["pacs 600"]["searches"]
    assert len(searches) == 5 and all(s["n"] == 2 and s["wrong"] == 0 for s in searches.values())
    assert all(rate > 0 for rates in report["stow"].values() for rate in rates)


@pytest.mark.benchmark_smoke
@pytest.mark.dcmtk
@pytest.mark.timeout(180)
@pytest.mark.skipif(dcmtk.find("storescu") is None, reason="DCMTK storescu is not installed")
def test_wado_benchmark_reports_latencies_throughput_and_memory() -> None:
    argv = [sys.executable, "-m", "benchmarks.wado", "--small", "3", "--large", "4"]
    argv += ["--requests", "3", "--rounds", "1", "--targets", "pacs"]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=170, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rows = {line.split(" | ")[0].strip("| "): line for line in result.stdout.splitlines()}
    for case in ("metadata small", "metadata large", "frame native", "frame encapsulated"):
        assert " p95 " in rows[case], rows
    assert float(rows["series MB"].split("|")[2]) == pytest.approx(4 * 0.527, rel=0.01)
    assert float(rows["series peak RSS MB"].split("|")[2]) > 0
