"""DICOMweb benchmark: QIDO-RS search latency at scale, and STOW-RS ingest rate.

QIDO: for each scale (instances in the index) and target (pacs on SQLite, pacs-pg on
PostgreSQL), the index is filled with the scale benchmark's generated archive (rows
written directly, benchmarks.scale_load), a server is started with [web], and the
searches OHIF v3 sends are timed one after the other over HTTP: the study list
(limit=101), a patient name and a patient ID typed in the filter (OHIF wraps them as
`*value*`), a study by UID, and the series of a study. Each answer is checked.

STOW: the same CT instances are sent with STOW-RS (requests of --batch instances from
--clients threads) to pacs and, when installed, to Orthanc with its DICOMweb plugin,
alternating, a fresh server each run. Usage:
python -m benchmarks.dicomweb [--scales 10000,100000] [--targets pacs,pacs-pg]
                              [--repeats 40] [--stow 200] [--runs 2]
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import postgres
from benchmarks.dataset import Kind, generate
from benchmarks.population import Study
from benchmarks.processes import DCMTK_ENV, free_port, launch, wait_for_port
from benchmarks.query_mix import percentile
from benchmarks.scale import Index, fill
from benchmarks.scale_population import scale_studies
from benchmarks.servers import Server, shutdown
from benchmarks.targets import START_TIMEOUT, start_pacs

SEED = 22
LIMIT = 101  # what OHIF asks for
INCLUDE = "includefield=00081030,00080060"  # StudyDescription, Modality
ORTHANC_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
JSON = "application/dicom+json"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Search:
    """One timed request: what it is, its path and query, and how to check the answer."""

    kind: str
    path: str
    check: Callable[[list[dict[str, Any]]], bool]


def _get(url: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Accept": JSON})
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
    return json.loads(body) if body else []


def _values(results: list[dict[str, Any]], tag: str) -> list[str]:
    out = []
    for result in results:
        value = (result.get(tag, {}).get("Value") or [""])[0]
        out.append(value["Alphabetic"] if isinstance(value, dict) else str(value))
    return out


def _needle(rng: random.Random, text: str) -> str:
    start = rng.randrange(max(1, len(text) - 3))
    return text[start : start + 3]


def _count(expected: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda results: len(results) == expected


def _contain(tag: str, needle: str) -> Callable[[list[dict[str, Any]]], bool]:
    """Some results, each with `needle` in `tag` (names compared in upper case)."""
    return lambda results: (
        bool(results) and all(needle in value.upper() for value in _values(results, tag))
    )


def _exactly(uid: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda results: _values(results, "0020000D") == [uid]


def _searches(studies: Sequence[Study], repeats: int) -> list[Search]:
    rng = random.Random(f"{SEED}-dicomweb-{len(studies)}")
    cases: list[Search] = []
    for _ in range(repeats):
        study = rng.choice(studies)
        name = _needle(rng, study.patient.name.split("^")[0]).upper()
        pid = _needle(rng, study.patient.patient_id)
        quoted = urllib.parse.quote
        cases += [
            Search(
                "study list, limit=101",
                f"/studies?limit={LIMIT}&offset=0&{INCLUDE}",
                _count(min(LIMIT, len(studies))),
            ),
            Search(
                "PatientName=*x*, limit=101",
                f"/studies?PatientName={quoted(f'*{name}*')}&limit={LIMIT}&offset=0&{INCLUDE}",
                _contain("00100010", name),
            ),
            Search(
                "PatientID=*x*, limit=101",
                f"/studies?PatientID={quoted(f'*{pid}*')}&limit={LIMIT}&offset=0&{INCLUDE}",
                _contain("00100020", pid.upper()),
            ),
            Search(
                "StudyInstanceUID",
                f"/studies?StudyInstanceUID={study.uid}",
                _exactly(study.uid),
            ),
            Search(
                "series of a study",
                f"/studies/{study.uid}/series?{INCLUDE}",
                _count(len(study.series)),
            ),
        ]
    return cases


def run_searches(base: str, cases: Sequence[Search]) -> dict[str, dict[str, Any]]:
    """Time each case; p50/p95 in ms and the number of wrong answers, per kind."""
    times: dict[str, list[float]] = {}
    wrong: dict[str, int] = {}
    for case in cases:
        started = time.perf_counter()
        results = _get(base + case.path)
        times.setdefault(case.kind, []).append((time.perf_counter() - started) * 1000)
        wrong[case.kind] = wrong.get(case.kind, 0) + (not case.check(results))
    return {
        kind: {
            "p50_ms": round(percentile(values, 0.5), 1),
            "p95_ms": round(percentile(values, 0.95), 1),
            "n": len(values),
            "wrong": wrong[kind],
        }
        for kind, values in times.items()
    }


def _start_web(index: Index) -> tuple[Server, str]:
    port = free_port()
    env = {**os.environ, "PACS_DATABASE_URL": index.url} if index.database else None
    server = start_pacs(index.workdir, env=env, extra=f"[web]\nport = {port}\n")
    wait_for_port(server.process, port, server.log, START_TIMEOUT)
    return server, f"http://127.0.0.1:{port}/dicom-web"


def qido(target: str, instances: int, repeats: int, tmp: Path) -> dict[str, Any]:
    studies = list(scale_studies(SEED, instances))
    index = Index(target, tmp / f"qido-{target}-{instances}")
    try:
        filled = fill(index, studies, [])
        server, base = _start_web(index)
        try:
            _get(base + "/studies?limit=1")  # the first request opens the connections
            result = run_searches(base, _searches(studies, repeats))
        finally:
            shutdown(server)
    finally:
        index.drop()
    return {"instances": filled["instances"], "studies": len(studies), "searches": result}


def _multipart(files: Sequence[bytes]) -> tuple[bytes, str]:
    boundary = "benchmark-boundary-7d3f"
    head = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    body = b"".join(head + data + b"\r\n" for data in files) + f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def _post(url: str, files: Sequence[bytes]) -> int:
    body, content_type = _multipart(files)
    headers = {"Content-Type": content_type, "Accept": JSON}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()
        return int(response.status)


def stow_rate(url: str, files: Sequence[bytes], batch: int, clients: int) -> float:
    """Instances/s of STOW-RS requests of `batch` files from `clients` threads (0 on failure)."""
    requests = [files[n : n + batch] for n in range(0, len(files), batch)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(lambda part: _post(url, part), requests))
    seconds = time.perf_counter() - started
    if any(status != 200 for status in statuses):
        _say(f"STOW to {url}: statuses {sorted(set(statuses))}")
        return 0.0
    return len(files) / seconds


def _start_orthanc(workdir: Path) -> tuple[Server, str]:
    dicom_port, http_port = free_port(), free_port()
    settings = {
        "Name": "bench",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(ORTHANC_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    workdir.mkdir(parents=True)
    config = workdir / "orthanc.json"
    config.write_text(json.dumps(settings, indent=2))
    log = workdir / "orthanc.log"
    process = launch(["Orthanc", str(config)], log, env=DCMTK_ENV)
    wait_for_port(process, http_port, log, START_TIMEOUT)
    server = Server(process, dicom_port, "ORTHANC", lambda: 0, log)
    return server, f"http://127.0.0.1:{http_port}/dicom-web/studies"


def _start_pacs_stow(workdir: Path) -> tuple[Server, str]:
    workdir.mkdir(parents=True)
    port = free_port()
    server = start_pacs(workdir, extra=f"[web]\nport = {port}\n")
    wait_for_port(server.process, port, server.log, START_TIMEOUT)
    return server, f"http://127.0.0.1:{port}/dicom-web/studies"


def stow(count: int, runs: int, batch: int, clients: int, tmp: Path) -> dict[str, list[float]]:
    paths = generate(tmp / "ct", Kind.CT, count, studies=4, patients=2, seed=SEED)
    files = [path.read_bytes() for path in paths]
    starters: dict[str, Callable[[Path], tuple[Server, str]]] = {"pacs": _start_pacs_stow}
    if ORTHANC_PLUGIN.is_file():
        starters["orthanc-dicomweb"] = _start_orthanc
    else:
        _say(f"orthanc-dicomweb: {ORTHANC_PLUGIN} not installed, left out")
    rates: dict[str, list[float]] = {name: [] for name in starters}
    for run in range(runs):
        names = list(starters) if run % 2 == 0 else list(reversed(starters))
        for name in names:
            server, url = starters[name](tmp / f"stow-{name}-{run}")
            try:
                rate = stow_rate(url, files, batch, clients)
            finally:
                shutdown(server)
            _say(f"STOW-RS {name}, run {run + 1}: {rate:,.1f} instances/s")
            rates[name].append(round(rate, 1))
    return rates


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", default="10000,100000", help="instances, comma-separated")
    parser.add_argument("--targets", default="pacs,pacs-pg", help="pacs and/or pacs-pg")
    parser.add_argument("--repeats", type=int, default=40, help="searches of each kind")
    parser.add_argument("--stow", type=int, default=200, help="CT instances per STOW run")
    parser.add_argument("--runs", type=int, default=2, help="STOW runs per target")
    parser.add_argument("--batch", type=int, default=10, help="instances per STOW request")
    parser.add_argument("--clients", type=int, default=2, help="concurrent STOW requests")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scales = [int(text) for text in args.scales.split(",") if text]
    targets = [name for name in args.targets.split(",") if name]
    results: dict[str, Any] = {"qido": {}, "stow": {}}
    with tempfile.TemporaryDirectory(prefix="pacs-dicomweb-") as tmp:
        for target in targets:
            if target == "pacs-pg" and (reason := postgres.unavailable()):
                _say(f"pacs-pg left out: {reason}")
                continue
            for instances in scales:
                found = qido(target, instances, args.repeats, Path(tmp))
                results["qido"][f"{target} {instances}"] = found
                for kind, figures in found["searches"].items():
                    _say(f"QIDO {target} {instances:,} instances, {kind}: {figures}")
        if args.stow:
            results["stow"] = stow(args.stow, args.runs, args.batch, args.clients, Path(tmp))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    wrong = sum(f["wrong"] for r in results["qido"].values() for f in r["searches"].values())
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
