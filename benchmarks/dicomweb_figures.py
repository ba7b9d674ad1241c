"""Each figure of the DICOMweb benchmark, measured against one running target.

Latencies are single requests on a warm keep-alive connection, one at a time; a figure
is the p50/p95 of `repeats` of them after one untimed warm-up request.
"""

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from threading import Event
from typing import Any

from benchmarks.dicomweb_data import NAME_FRAGMENT, SeriesFiles
from benchmarks.dicomweb_http import (
    ANY_FRAME,
    ANY_INSTANCE,
    DICOM_JSON,
    Client,
    RequestFailed,
    percentile,
)
from benchmarks.population import Study
from benchmarks.preload import store
from benchmarks.processes import PeakMemory, reset_peak
from benchmarks.servers import Server

MB = 1e6
# A browser opens at most six connections to one host over HTTP/1.1.
VIEWER_CONNECTIONS = 6
STOW_BATCH = 10
STOW_CLIENTS = 2
# What OHIF's study list asks for (its includefield) with every search.
LIMIT = 101
STUDY_LIST = f"limit={LIMIT}&offset=0&fuzzymatching=false&includefield=00081030%2C00080060"


def latency(call: Callable[[int], float], repeats: int) -> dict[str, float]:
    """p50 and p95 in ms of `call(i)` (which returns seconds), after one warm-up call."""
    call(0)
    seconds = [call(i) for i in range(repeats)]
    return {"p50_ms": percentile(seconds, 0.5) * 1e3, "p95_ms": percentile(seconds, 0.95) * 1e3}


def metadata(client: Client, series: SeriesFiles, repeats: int) -> dict[str, float]:
    """GET .../series/{uid}/metadata, as the viewer asks for every series it opens."""
    expected = len(series.instances)

    def call(_: int) -> float:
        reply = client.get(series.path + "/metadata", DICOM_JSON)
        if reply.size < expected * 100:
            raise RequestFailed(f"metadata of {expected} instances in {reply.size} bytes")
        return reply.seconds

    return latency(call, repeats)


def frame(client: Client, series: SeriesFiles, repeats: int) -> dict[str, float]:
    """GET .../instances/{uid}/frames/1 of the series' instances in turn, as stored."""

    def call(i: int) -> float:
        uid = series.instances[i % len(series.instances)]
        return client.get(f"{series.path}/instances/{uid}/frames/1", ANY_FRAME).seconds

    return latency(call, repeats)


@dataclass(frozen=True, slots=True)
class Search:
    """A study-level QIDO search, and which population studies it matches."""

    path: str
    matches: Callable[[Study], bool]
    limit: int | None = LIMIT

    def expected(self, population: Sequence[Study]) -> int:
        found = sum(1 for study in population if self.matches(study))
        return found if self.limit is None else min(found, self.limit)


def study_searches() -> dict[str, Search]:
    """The study-level QIDO searches measured at each population size, by label. The `*`
    go unescaped, as a browser's URLSearchParams leaves them (Orthanc does not decode %2A).
    Only the population's studies match (the other test series are of 2024-01-08)."""
    fragment, patient_id = NAME_FRAGMENT, "PID01000003"  # the first patient's ID
    return {
        f"*{fragment.lower()}* name, limit=101": Search(
            f"/studies?PatientName=*{fragment}*&{STUDY_LIST}",
            lambda study: fragment in study.patient.name.upper(),
        ),
        "PatientID exact": Search(
            f"/studies?PatientID={patient_id}&includefield=00081030",
            lambda study: study.patient.patient_id == patient_id,
            None,
        ),
        "StudyDate one month, limit=101": Search(
            f"/studies?StudyDate=20230101-20230131&{STUDY_LIST}",
            lambda study: "20230101" <= study.date <= "20230131",
        ),
    }


def _search_seconds(client: Client, path: str, _: int) -> float:
    return client.get(path, DICOM_JSON).seconds


def qido(
    client: Client, population: Sequence[Study], repeats: int
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """p50/p95 and match count of each study search, and the searches that answered
    with another number of studies than the population holds."""
    figures: dict[str, dict[str, Any]] = {}
    wrong = []
    for label, search in study_searches().items():
        matches, expected = len(client.json(search.path)), search.expected(population)
        if matches != expected:
            wrong.append(f"{label}: {matches} studies, expected {expected}")
        timed = latency(partial(_search_seconds, client, search.path), repeats)
        figures[label] = {"matches": matches, **timed}
    return figures, wrong


def series_retrieve(client: Client, server: Server, series: SeriesFiles) -> dict[str, float]:
    """GET the whole series as multipart Part 10 files: MB/s and the server's peak RSS."""
    reset_peak(server.process.pid)
    with PeakMemory(server.process.pid) as memory:
        reply = client.get(series.path, ANY_INSTANCE)
    if reply.size < series.size:
        raise RequestFailed(f"series of {series.size} bytes came as {reply.size}")
    return {
        "mb": reply.size / MB,
        "mb_per_s": reply.size / MB / reply.seconds,
        "peak_rss_mb": memory.peak_mb(),
    }


def stow(client: Client, series: SeriesFiles) -> dict[str, float]:
    """STOW-RS the series in batches of STOW_BATCH files from STOW_CLIENTS clients."""
    batches = [series.files[i : i + STOW_BATCH] for i in range(0, len(series.files), STOW_BATCH)]
    bodies = [[path.read_bytes() for path in batch] for batch in batches]
    started = time.perf_counter()
    with ThreadPoolExecutor(STOW_CLIENTS) as pool:
        list(pool.map(client.stow, bodies))
    seconds = time.perf_counter() - started
    return {"instances": len(series.files), "instances_per_s": len(series.files) / seconds}


def _view_study(client: Client, series: SeriesFiles, stop: Event) -> int:
    """What a viewer opening the study asks for: its series, their metadata, every frame."""
    client.json(f"/studies/{series.study}/series")
    client.get(series.path + "/metadata", DICOM_JSON)
    frames = 0
    for uid in series.instances:
        if stop.is_set():
            break
        client.get(f"{series.path}/instances/{uid}/frames/1", ANY_FRAME)
        frames += 1
    return frames


def _viewers(client: Client, series: SeriesFiles, stop: Event) -> int:
    """VIEWER_CONNECTIONS loops opening the study until `stop`; frames fetched."""

    def loop(offset: int) -> int:
        rng, frames = random.Random(offset), 0
        while not stop.is_set():
            shuffled = SeriesFiles(
                series.files,
                series.study,
                series.series,
                rng.sample(series.instances, len(series.instances)),
            )
            frames += _view_study(client, shuffled, stop)
        return frames

    with ThreadPoolExecutor(VIEWER_CONNECTIONS) as pool:
        return sum(pool.map(loop, range(VIEWER_CONNECTIONS)))


def ingest_under_viewer(
    client: Client,
    server: Server,
    batches: Sequence[SeriesFiles],
    viewed: SeriesFiles,
    logdir: Path,
) -> dict[str, float]:
    """C-STORE (storescu, one association) of batches[0] alone, then of batches[1] while
    viewers load `viewed` again and again: both rates, and their ratio."""
    alone, codes = store(server, [batches[0].files], logdir / "alone", timeout=600)
    stop = Event()
    with ThreadPoolExecutor(1) as pool:
        viewing = pool.submit(_viewers, client, viewed, stop)
        loaded, more = store(server, [batches[1].files], logdir / "viewed", timeout=600)
        stop.set()
        frames = viewing.result()
    if any(codes) or any(more):
        raise RequestFailed(f"storescu exit codes {codes} {more}")
    rate_alone, rate_loaded = len(batches[0].files) / alone, len(batches[1].files) / loaded
    return {
        "alone_per_s": rate_alone,
        "viewed_per_s": rate_loaded,
        "ratio": rate_loaded / rate_alone,
        "viewer_frames_per_s": frames / loaded,
    }
