"""One measured retrieve: C-MOVE a study to DCMTK storescp (movescu), or C-GET it (getscu).

The study is loaded once; each run empties the receiving folder, restarts the
server's peak-memory mark, runs the DCMTK SCU and counts the files that
arrived. Wall time runs from the SCU's start to its exit.
"""

import shutil
import subprocess
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from pydicom import dcmread

from benchmarks import dcmtk
from benchmarks.processes import (
    DCMTK_DEFAULTS_ENV,
    DCMTK_ENV,
    PeakMemory,
    log_tail,
    reset_peak,
    wait_all,
)
from benchmarks.runs import CALLING_AE_TITLE, RunResult
from benchmarks.servers import Server

DESTINATION_AE_TITLE = "STORESCP"
# The move destination fed by storescu directly: what it can ingest, the bound of any C-MOVE.
CEILING_TARGET = "ceiling"


class Operation(StrEnum):
    MOVE = "C-MOVE"
    GET = "C-GET"
    # getscu as it comes, Nagle's algorithm on: how a workstation with default settings asks.
    GET_DEFAULTS = "C-GET (getscu defaults, Nagle on)"


@dataclass(frozen=True, slots=True)
class LoadedStudy:
    """A study every target holds: its label, UID, and its Part 10 files as sent."""

    label: str
    uid: str
    files: list[Path]

    @property
    def bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files)


def study_uid(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def _argv(operation: Operation, server: Server, uid: str, get_dir: Path) -> list[str]:
    if operation is Operation.MOVE:
        argv = [dcmtk.tool("movescu"), "-S", "-aem", DESTINATION_AE_TITLE]
    else:
        argv = [dcmtk.tool("getscu"), "-S", "-od", str(get_dir)]
    argv += ["-aet", CALLING_AE_TITLE, "-aec", server.ae_title, "127.0.0.1", str(server.port)]
    return [*argv, "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}"]


def _empty(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_file())


@dataclass(frozen=True, slots=True)
class Retrieval:
    """Where retrieved files land: the move destination's folder, and one for getscu."""

    moved: Path
    got: Path
    logdir: Path
    timeout: float

    def folder(self, operation: Operation) -> Path:
        return self.moved if operation is Operation.MOVE else self.got


def retrieve_once(
    operation: Operation,
    target: str,
    server: Server,
    study: LoadedStudy,
    *,
    number: int,
    where: Retrieval,
) -> RunResult:
    """Retrieve `study` once and check every instance arrived; never raises for a bad run."""
    workload = f"{operation} {study.label}"
    blank = RunResult(workload, target, number, len(study.files), study.bytes)
    folder = where.folder(operation)
    _empty(folder)
    log = where.logdir / f"{operation.name.lower()}-{target}-{number}.log"
    reset_peak(server.process.pid)
    try:
        with PeakMemory(server.process.pid) as memory, log.open("wb") as out:
            started = time.perf_counter()
            client = subprocess.Popen(
                _argv(operation, server, study.uid, where.got),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=DCMTK_DEFAULTS_ENV if operation is Operation.GET_DEFAULTS else DCMTK_ENV,
            )
            [code] = wait_all([client], where.timeout)
            seconds = time.perf_counter() - started
            peak = memory.peak_mb()
    except subprocess.TimeoutExpired:
        return replace(blank, error=f"still running after {where.timeout:.0f} s")
    received = _files(folder)
    result = RunResult(
        workload, target, number, blank.instances, blank.bytes, seconds, len(received), peak, [code]
    )
    if code != 0:
        return replace(result, error=f"exit code {code}: {log_tail(log, 4)}")
    if len(received) != result.instances:
        detail = log_tail(server.log, 4)
        return replace(result, error=f"received {len(received)} of {result.instances}: {detail}")
    return result


def ceiling_once(
    destination: Server, study: LoadedStudy, *, number: int, where: Retrieval
) -> RunResult:
    """What the move destination ingests of `study` sent by DCMTK storescu over one
    association, as a C-MOVE sends it: the receiver's ceiling, under the C-MOVE workload."""
    workload = f"{Operation.MOVE} {study.label}"
    blank = RunResult(workload, CEILING_TARGET, number, len(study.files), study.bytes)
    _empty(where.moved)
    log = where.logdir / f"ceiling-{number}.log"
    argv = [dcmtk.tool("storescu"), "-aet", CALLING_AE_TITLE, "-aec", DESTINATION_AE_TITLE]
    argv += ["127.0.0.1", str(destination.port), *(str(path) for path in study.files)]
    try:
        with log.open("wb") as out:
            started = time.perf_counter()
            client = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=DCMTK_ENV)
            [code] = wait_all([client], where.timeout)
            seconds = time.perf_counter() - started
    except subprocess.TimeoutExpired:
        return replace(blank, error=f"still running after {where.timeout:.0f} s")
    received = len(_files(where.moved))
    result = replace(blank, seconds=seconds, stored=received, exit_codes=[code])
    if code != 0:
        return replace(result, error=f"exit code {code}: {log_tail(log, 4)}")
    if received != result.instances:
        return replace(result, error=f"received {received} of {result.instances}")
    return result


def received_transfer_syntax(folder: Path) -> str:
    """The transfer syntax of a file the last retrieval left in `folder` ("" if none)."""
    files = _files(folder) if folder.is_dir() else []
    return (
        str(dcmread(files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID) if files else ""
    )
