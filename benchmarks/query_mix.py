"""The C-FIND query mix, what each query should match, and a client that times round trips.

Every query is a Study Root C-FIND with the return keys a viewer's study
browser asks for. Each one carries what it should match, worked out from the
population (not from any server), so the benchmark also checks the answers:
which entities came back, and the values of the keys it checks.
"""

import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from pydicom.dataset import Dataset

from benchmarks.population import DAYS, FIRST_DATE, MODALITIES, Study

STUDY_KEYS = (
    "StudyInstanceUID",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_KEYS = (
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "BodyPartExamined",
    "NumberOfSeriesRelatedInstances",
)
IMAGE_KEYS = ("SOPInstanceUID", "SOPClassUID", "InstanceNumber")
UNIQUE_KEY = {"STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}

Expected = dict[str, dict[str, str]]  # unique key of each match -> checked keyword -> value


@dataclass(frozen=True, slots=True)
class Case:
    """One C-FIND to send: the query it is an instance of, its matching value, its answer."""

    query: str
    value: str
    identifier: Dataset
    expected: Expected = field(repr=False)


def _identifier(level: str, keys: Sequence[str], **matching: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword in keys:
        setattr(ds, keyword, "")
    for keyword, value in matching.items():
        setattr(ds, keyword, value)
    return ds


def studies_case(query: str, value: str, matches: list[Study], **matching: str) -> Case:
    expected = {
        study.uid: {
            "PatientID": study.patient.patient_id,
            "AccessionNumber": study.accession,
            "StudyDate": study.date,
            "ModalitiesInStudy": "\\".join(sorted(study.modalities)),
            "NumberOfStudyRelatedSeries": str(len(study.series)),
            "NumberOfStudyRelatedInstances": str(study.instances),
        }
        for study in matches
    }
    return Case(query, value, _identifier("STUDY", STUDY_KEYS, **matching), expected)


def by_patient_id(rng: random.Random, studies: Sequence[Study]) -> Case:
    wanted = rng.choice(studies).patient.patient_id
    matches = [s for s in studies if s.patient.patient_id == wanted]
    return studies_case("PatientID exact", wanted, matches, PatientID=wanted)


def by_name_prefix(rng: random.Random, studies: Sequence[Study]) -> Case:
    prefix = rng.choice(studies).patient.name.upper()[:3]
    matches = [s for s in studies if s.patient.name.upper().startswith(prefix)]
    return studies_case("PatientName prefix", f"{prefix}*", matches, PatientName=f"{prefix}*")


def by_month(rng: random.Random, studies: Sequence[Study]) -> Case:
    month = rng.randrange(DAYS * 12 // 366)  # whole months since FIRST_DATE
    first = date(FIRST_DATE.year + month // 12, month % 12 + 1, 1)
    last = (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)
    span = f"{first:%Y%m%d}-{last:%Y%m%d}"
    matches = [s for s in studies if first <= date.fromisoformat(s.date) <= last]
    return studies_case("StudyDate one month", span, matches, StudyDate=span)


def by_modality(rng: random.Random, studies: Sequence[Study]) -> Case:
    modality = rng.choice(MODALITIES)
    matches = [s for s in studies if modality in s.modalities]
    return studies_case("ModalitiesInStudy", modality, matches, ModalitiesInStudy=modality)


def by_accession(rng: random.Random, studies: Sequence[Study]) -> Case:
    wanted = rng.choice(studies).accession
    matches = [s for s in studies if s.accession == wanted]
    return studies_case("AccessionNumber", wanted, matches, AccessionNumber=wanted)


def series_of_study(rng: random.Random, studies: Sequence[Study]) -> Case:
    study = rng.choice(studies)
    expected = {
        series.uid: {
            "Modality": series.modality,
            "NumberOfSeriesRelatedInstances": str(series.instances),
        }
        for series in study.series
    }
    identifier = _identifier("SERIES", SERIES_KEYS, StudyInstanceUID=study.uid)
    return Case("series of a study", study.uid, identifier, expected)


def instances_of_series(rng: random.Random, studies: Sequence[Study]) -> Case:
    study = rng.choice(studies)
    series = rng.choice(study.series)
    expected: Expected = {uid: {} for uid in series.instance_uids()}
    identifier = _identifier(
        "IMAGE", IMAGE_KEYS, StudyInstanceUID=study.uid, SeriesInstanceUID=series.uid
    )
    return Case("instances of a series", series.uid, identifier, expected)


# Each query and the share of the repetitions it gets: a ModalitiesInStudy match
# returns a tenth of the archive, so it runs a fifth as often.
QUERIES: tuple[tuple[Callable[[random.Random, Sequence[Study]], Case], float], ...] = (
    (by_patient_id, 1.0),
    (by_name_prefix, 1.0),
    (by_month, 1.0),
    (by_modality, 0.2),
    (by_accession, 1.0),
    (series_of_study, 1.0),
    (instances_of_series, 1.0),
)


def make_cases(studies: Sequence[Study], repeats: int, seed: int) -> list[Case]:
    """`repeats` cases of each query (fewer of the heavy ones), interleaved, values varied."""
    rng = random.Random(f"{seed}-queries-{len(studies)}")
    rounds = [
        [make(rng, studies) for _ in range(max(2, round(repeats * share)))]
        for make, share in QUERIES
    ]
    longest = max(map(len, rounds))
    return [cases[n] for n in range(longest) for cases in rounds if n < len(cases)]


@dataclass(frozen=True, slots=True)
class Observation:
    """One timed C-FIND: its round trip, what matched, and what was wrong with the answer."""

    query: str
    value: str
    case: int
    seconds: float
    matches: int
    problems: tuple[str, ...] = ()


def _normalise(keyword: str, value: object) -> str:
    if value is None:
        return ""
    if keyword == "ModalitiesInStudy":  # a str when one value, else a pydicom MultiValue
        values = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        return "\\".join(sorted(str(v) for v in values if str(v)))
    text = str(value).strip()
    return str(int(text)) if keyword.startswith("NumberOf") and text.isdigit() else text


def check(case: Case, responses: Sequence[Dataset]) -> tuple[str, ...]:
    """What differs between the responses and the case's expected answer, briefly."""
    level = str(case.identifier.QueryRetrieveLevel)
    key = UNIQUE_KEY[level]
    got = {str(ds.get(key, "")): ds for ds in responses}
    problems = []
    if missing := sorted(case.expected.keys() - got.keys()):
        problems.append(f"{len(missing)} expected match(es) missing, e.g. {missing[0]}")
    if extra := sorted(got.keys() - case.expected.keys()):
        problems.append(f"{len(extra)} unexpected match(es), e.g. {extra[0]}")
    if len(got) != len(responses):
        problems.append(f"{len(responses) - len(got)} duplicate match(es)")
    for uid, wanted in case.expected.items():
        if (ds := got.get(uid)) is None:
            continue
        for keyword, value in wanted.items():
            if (seen := _normalise(keyword, ds.get(keyword))) != value:
                problems.append(f"{keyword} {seen!r} != {value!r}")
    return tuple(problems)


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` quantile (0 < share < 1) by linear interpolation; the value itself if alone."""
    if len(values) < 2:
        return values[0] if values else 0.0
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(share * 100) - 1]
