"""The benchmark harness's targets and client waits: the calibration receiver's variants,
pacs from another checkout (pacs-baseline), and the blocking wait for client processes."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import calibration, dcmtk
from benchmarks.dataset import Kind, generate
from benchmarks.ingest import workloads
from benchmarks.processes import wait_all
from benchmarks.qr_targets import QR_TARGETS
from benchmarks.report import document, markdown, summarise
from benchmarks.runs import RunResult, send
from benchmarks.servers import Destination, shutdown
from benchmarks.targets import BASELINE_VARIABLE, TARGETS

ROOT = Path(__file__).resolve().parent.parent
NO_STORESCU = dcmtk.find("storescu") is None


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_wait_all_returns_every_exit_code_in_order() -> None:
    processes = [_python("raise SystemExit(3)"), _python("pass"), _python("raise SystemExit(5)")]

    assert wait_all(processes, timeout=60) == [3, 0, 5]


def test_wait_all_kills_the_clients_still_running_at_the_timeout() -> None:
    quick, stuck = _python("pass"), _python("import time; time.sleep(600)")

    with pytest.raises(subprocess.TimeoutExpired):
        wait_all([quick, stuck], timeout=1)

    assert quick.returncode == 0
    assert stuck.returncode == -9  # SIGKILL from the watchdog, and reaped


def test_pacs_baseline_is_not_available_without_a_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(BASELINE_VARIABLE, raising=False)
    assert BASELINE_VARIABLE in (TARGETS["pacs-baseline"].missing() or "")

    monkeypatch.setenv(BASELINE_VARIABLE, str(tmp_path))
    assert "holds no pacs package" in (TARGETS["pacs-baseline"].missing() or "")


@pytest.mark.dcmtk
@pytest.mark.benchmark_smoke
@pytest.mark.timeout(180)
@pytest.mark.skipif(NO_STORESCU, reason="DCMTK storescu is not installed")
def test_pacs_baseline_serves_the_code_of_its_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    checkout, imports = tmp_path / "checkout", tmp_path / "imports.txt"
    shutil.copytree(ROOT / "pacs", checkout / "pacs", ignore=shutil.ignore_patterns("__pycache__"))
    with (checkout / "pacs" / "__init__.py").open("a") as init:
        init.write(
            "\nimport os as _os\n"
            "with open(_os.environ['BASELINE_IMPORTS'], 'a') as _log:\n"
            "    _log.write(f'{_os.getpid()} {__file__}\\n')\n"
        )
    monkeypatch.setenv(BASELINE_VARIABLE, str(checkout))
    monkeypatch.setenv("BASELINE_IMPORTS", str(imports))
    files = generate(tmp_path / "data", Kind.SMALL, 6, studies=1, patients=1)
    target = QR_TARGETS["pacs-baseline"]
    assert target.missing() is None
    assert str(checkout) in target.version()
    (tmp_path / "server").mkdir()

    server = target.start(tmp_path / "server", [Destination("STORESCP", 11112)])
    try:
        seconds, codes = send(server, [files[:3], files[3:]], tmp_path, timeout=60)
        stored = server.stored()
        pid = server.process.pid
    finally:
        shutdown(server)

    assert (codes, stored) == ([0, 0], 6)
    assert seconds > 0
    assert f"{pid} {checkout / 'pacs' / '__init__.py'}" in imports.read_text().splitlines()
    assert 'ae_title = "STORESCP"' in (tmp_path / "server" / "pacs.toml").read_text()


@pytest.mark.dcmtk
@pytest.mark.benchmark_smoke
@pytest.mark.timeout(330)
@pytest.mark.skipif(NO_STORESCU, reason="DCMTK storescu is not installed")
@pytest.mark.skipif(
    calibration.receiver() is None,
    reason=f"the calibration receiver is not at {calibration.DEFAULT_PATH} "
    f"nor at ${calibration.ENV_VARIABLE}",
)
def test_tiny_ingest_into_every_calibration_variant(tmp_path: Path) -> None:
    targets = list(calibration.VARIANTS)
    json_out = tmp_path / "ingest.json"
    argv = [sys.executable, "-m", "benchmarks.ingest", "--scale", "tiny", "--runs", "1"]
    argv += ["--targets", ",".join(targets), "--json", str(json_out), "--timeout", "60"]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env=os.environ
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(json_out.read_text())
    assert report["skipped"] == {}
    rates = {(s["workload"], s["target"]): s["instances_per_second"] for s in report["summary"]}
    assert {target for _, target in rates} == set(targets)
    assert len(rates) == len(workloads("tiny")) * len(targets) == 7 * len(targets)
    assert all(rate > 0 for rate in rates.values()), rates
    assert all(run["stored"] == run["instances"] == 8 for run in report["runs"])
    versions = report["environment"]["versions"]
    assert all(str(calibration.receiver()) in versions[target] for target in targets)


@pytest.mark.dcmtk
@pytest.mark.benchmark_smoke
@pytest.mark.timeout(330)
@pytest.mark.skipif(NO_STORESCU, reason="DCMTK storescu is not installed")
@pytest.mark.skipif(calibration.receiver() is None, reason="no calibration receiver")
def test_s3_bound_rates_pacs_on_files_on_s3_and_the_bound_beside_them() -> None:
    argv = [sys.executable, "-m", "benchmarks.s3_bound", "--scale", "tiny", "--runs", "1"]

    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env=os.environ
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rows = re.findall(
        r"^\| (small|ct) \| (\d+) \| (\d+) \(([\d.]+)x\) \| (\d+) \(([\d.]+)x\) \|$",
        result.stdout,
        re.MULTILINE,
    )
    assert [row[0] for row in rows] == ["small", "ct"], result.stdout
    for _, files, s3, s3_ratio, bound, bound_ratio in rows:
        assert int(files) > 0 and int(s3) > 0 and int(bound) > 0
        assert float(s3_ratio) == pytest.approx(int(s3) / int(files), rel=0.05)
        assert float(bound_ratio) == pytest.approx(int(bound) / int(files), rel=0.05)


def test_ingest_table_compares_pacs_with_its_baseline_when_one_ran() -> None:
    def run(target: str, seconds: float) -> RunResult:
        return RunResult("small", target, 1, 100, 10**6, seconds, 100, 50.0, [0])

    summaries = summarise([run("pacs", 1.0), run("pacs-baseline", 2.0), run("orthanc", 4.0)])
    without = summarise([run("pacs", 1.0), run("orthanc", 4.0)])

    table = markdown(summaries, 1, {})
    header = "| peak RSS MB | ratio pacs/orthanc (inst/s) | ratio pacs/pacs-baseline (inst/s) |"
    assert header in table
    assert "| small | pacs | 100 | 1.0 | 50 | 4.00x | 2.00x |" in table
    assert "| small | pacs-baseline | 50 | 0.5 | 50 | 2.00x |  |" in table
    assert "pacs-baseline" not in markdown(without, 1, {})
    assert [s["ratio_to_baseline"] for s in document(summaries)["summary"]] == [2.0, None, None]
