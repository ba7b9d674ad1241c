"""The scale benchmark's C-FIND mix, and its check of generated rows through C-FIND and C-GET.

The mix is what a study browser sends to a large archive: keyed study queries
(Study Instance UID, Patient ID, Accession Number, one month of Study Date), the
series of a study and the instances of a series, and a leading-wildcard Patient
Name search (`*SMI*`) that a server answers up to its `max_results`. Expected
answers come from the population (benchmarks.query_mix); the cut search must
return exactly `max_results` of its matches, or all when fewer.
"""

import random
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from benchmarks import dcmtk
from benchmarks.find_client import FindClient
from benchmarks.population import Study
from benchmarks.processes import DCMTK_ENV, wait_all
from benchmarks.query_mix import (
    UNIQUE_KEY,
    Case,
    Observation,
    by_accession,
    by_month,
    by_patient_id,
    check,
    instances_of_series,
    percentile,
    series_of_study,
    studies_case,
)
from benchmarks.runs import CALLING_AE_TITLE
from benchmarks.scale_rows import instance_dataset
from benchmarks.servers import Server

WILDCARD = "*SMI*"


def by_study_uid(rng: random.Random, studies: Sequence[Study]) -> Case:
    study = rng.choice(studies)
    return studies_case("StudyInstanceUID", study.uid, [study], StudyInstanceUID=study.uid)


def name_contains(_rng: random.Random, studies: Sequence[Study]) -> Case:
    needle = WILDCARD.strip("*")
    matches = [s for s in studies if needle in s.patient.name.upper()]
    return studies_case("PatientName *SMI* (cut)", WILDCARD, matches, PatientName=WILDCARD)


QUERIES: tuple[Callable[[random.Random, Sequence[Study]], Case], ...] = (
    by_study_uid,
    by_patient_id,
    by_accession,
    by_month,
    series_of_study,
    instances_of_series,
    name_contains,
)
KEYED = frozenset({"StudyInstanceUID", "PatientID exact", "AccessionNumber"})


def make_cases(studies: Sequence[Study], repeats: int, seed: int) -> list[Case]:
    """`repeats` cases of each query with varied values, interleaved."""
    rng = random.Random(f"{seed}-scale-queries-{len(studies)}")
    rounds = [[make(rng, studies) for _ in range(repeats)] for make in QUERIES]
    return [cases[n] for n in range(repeats) for cases in rounds]


def check_cut(case: Case, responses: Sequence[Dataset], limit: int) -> tuple[str, ...]:
    """Answers cut at `limit`: `limit` of the expected ones, or all of them when fewer."""
    if len(case.expected) <= limit:
        return check(case, responses)
    key = UNIQUE_KEY[str(case.identifier.QueryRetrieveLevel)]
    got = [str(ds.get(key, "")) for ds in responses]
    problems = []
    if len(got) != limit:
        problems.append(f"{len(got)} answers, expected the limit {limit}")
    if extra := [uid for uid in got if uid not in case.expected]:
        problems.append(f"{len(extra)} unexpected match(es), e.g. {extra[0]}")
    return tuple(problems)


def run_mix(server: Server, cases: Sequence[Case], limit: int) -> list[Observation]:
    """Send every case once over one association, timing and checking each."""
    observations = []
    with FindClient(server.port, server.ae_title) as client:
        client.echo()
        for number, case in enumerate(cases):
            seconds, responses = client.find(case.identifier)
            problems = check_cut(case, responses, limit)
            observations.append(
                Observation(case.query, case.value, number, seconds, len(responses), problems)
            )
    return observations


@dataclass(frozen=True, slots=True)
class Latency:
    query: str
    count: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    mean_matches: float
    problems: tuple[str, ...]


def summarise(observations: Sequence[Observation]) -> list[Latency]:
    by_query: dict[str, list[Observation]] = {}
    for observation in observations:
        by_query.setdefault(observation.query, []).append(observation)
    out = []
    for query, seen in by_query.items():
        ms = [o.seconds * 1000 for o in seen]
        problems = tuple(p for o in seen for p in o.problems)
        matches = sum(o.matches for o in seen) / len(seen)
        out.append(
            Latency(
                query,
                len(seen),
                percentile(ms, 0.5),
                percentile(ms, 0.95),
                max(ms),
                matches,
                problems[:3],
            )
        )
    return out


def check_sample(server: Server, sample: Sequence[Study], folder: Path) -> list[str]:
    """C-FIND each sample study by UID and C-GET it; return what was wrong (empty: all fine).

    Every file received must hold the data set the rows were generated from.
    """
    problems = []
    with FindClient(server.port, server.ae_title) as client:
        for study in sample:
            case = by_study_uid(random.Random(0), [study])
            _, responses = client.find(case.identifier)
            problems += [f"C-FIND {study.uid}: {p}" for p in check(case, responses)]
    for study in sample:
        target = folder / study.uid
        target.mkdir(parents=True)
        problems += [f"C-GET {study.uid}: {p}" for p in _get_and_compare(server, study, target)]
    return problems


def _get_and_compare(server: Server, study: Study, folder: Path) -> list[str]:
    argv = [dcmtk.tool("getscu"), "-S", "-od", str(folder), "-aet", CALLING_AE_TITLE]
    argv += ["-aec", server.ae_title, "127.0.0.1", str(server.port)]
    argv += ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study.uid}"]
    with (folder / "getscu.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=DCMTK_ENV)
    [code] = wait_all([process], 300.0)
    if code:
        return [f"getscu exit code {code}"]
    received = {}
    for path in folder.glob("*"):
        if path.name != "getscu.log":
            ds = dcmread(path)
            received[str(ds.SOPInstanceUID)] = ds
    problems = []
    for series in study.series:
        for number, uid in enumerate(series.instance_uids(), start=1):
            got = received.pop(uid, None)
            if got is None:
                problems.append(f"{uid} not received")
            elif differs := _difference(got, instance_dataset(study, series, number)):
                problems.append(f"{uid} differs from the generated data set: {differs}")
    problems += [f"{uid} unexpected" for uid in received]
    return problems


def _difference(got: Dataset, sent: Dataset) -> str:
    """The first attribute in which `got` differs from `sent` ("" if none)."""
    for element in sent:
        other = got.get(element.tag)
        if other is None or other.value != element.value:
            return f"{element.keyword} {element.value!r:.40} != {other and other.value!r:.40}"
    extra = [element.keyword for element in got if element.tag not in sent]
    return f"extra {', '.join(extra)}" if extra else ""
