"""A synthetic archive of a given instance count, shaped like a hospital's: for the scale benchmark.

Unlike benchmarks.population (a fixed number of instances per study), study sizes
vary as they do in practice: one to four series per study; CT, MR and PT series of
1-300 instances (log-uniform, so most are tens), ultrasound and nuclear medicine
series of up to 60, radiographs and mammograms of 1-4 images; about a quarter of
studies carry a one-instance structured report. About seven in ten studies belong
to a new patient, so a million instances hold about 10,000 patients. Names come
from benchmarks.population (mixed case, middle initials) plus some double-barrelled
and apostrophe surnames. The same seed and count always give the same archive.
"""

import math
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

from benchmarks.population import (
    DAYS,
    DESCRIPTIONS,
    FIRST_DATE,
    MODALITY_SHARES,
    REPORT_SHARE,
    SURNAMES,
    Patient,
    Series,
    Study,
    patient,
)

UID_ROOT = "1.2.826.0.1.3680043.8.498.22"  # under pydicom's registered root
NEW_PATIENT_SHARE = 0.7
LARGE = frozenset({"CT", "MR", "PT"})
MEDIUM = frozenset({"US", "NM"})


def _images(rng: random.Random, modality: str) -> int:
    if modality in LARGE:
        return int(math.exp(rng.uniform(0, math.log(301))))
    if modality in MEDIUM:
        return int(math.exp(rng.uniform(0, math.log(61))))
    return rng.randint(1, 4)


def _named(seed: int, number: int) -> Patient:
    person = patient(seed, number)
    rng = random.Random(f"{seed}-surname-{number}")
    surname, rest = person.name.split("^", 1)
    if rng.random() < 0.05:
        surname = f"{surname}-{rng.choice(SURNAMES)}"
    elif rng.random() < 0.03:
        surname = f"O'{surname}"
    name = f"{surname}^{rest}"
    return replace(person, name=name.title() if person.name[1:2].islower() else name.upper())


def _series(rng: random.Random, uid: str, modality: str, left: int) -> tuple[Series, ...]:
    count = rng.choice((1, 2, 2, 3, 4))
    description = rng.choice(DESCRIPTIONS[modality])
    series = []
    for number in range(1, count + 1):
        instances = min(_images(rng, modality), left)
        if instances <= 0:
            break
        left -= instances
        series.append(
            Series(f"{uid}.{number}", modality, number, f"{description} {number}", instances)
        )
    if left > 0 and rng.random() < REPORT_SHARE:
        series.append(Series(f"{uid}.{len(series) + 1}", "SR", 999, "REPORT", 1))
    return tuple(series)


def scale_studies(seed: int, instances: int) -> Iterator[Study]:
    """Studies holding exactly `instances` instances in all (the last one cut to fit)."""
    left, index, patients = instances, 0, 0
    while left > 0:
        rng = random.Random(f"{seed}-scale-study-{index}")
        if patients == 0 or rng.random() < NEW_PATIENT_SHARE:
            owner, patients = patients, patients + 1
        else:
            owner = rng.randrange(patients)
        modality = rng.choices(list(MODALITY_SHARES), weights=list(MODALITY_SHARES.values()))[0]
        uid = f"{UID_ROOT}.{seed}.{index + 1}"
        when = FIRST_DATE + timedelta(days=rng.randrange(DAYS))
        series = _series(rng, uid, modality, left)
        left -= sum(s.instances for s in series)
        yield Study(
            index,
            uid,
            _named(seed, owner),
            when.strftime("%Y%m%d"),
            f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
            f"ACC{(index * 104_729 + 54_321) % 10**9:09d}",  # 104729: prime, so unique
            rng.choice(DESCRIPTIONS[modality]),
            series,
        )
        index += 1
