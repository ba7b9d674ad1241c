"""A synthetic, deterministic archive catalogue at index scale: patients, studies, series.

Study number i depends only on the seed and on studies 0..i-1, so the first N
studies of a larger population are exactly the population of N studies: a
benchmark can load 1,000 studies, query, load 9,000 more and query again.
Names are common surnames (some spelt in mixed case, as many modalities send
them), study dates spread over ten years, and the modality mix of a general
hospital; about a quarter of studies also carry a structured report series.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

UID_ROOT = "1.2.826.0.1.3680043.8.498.7"  # under pydicom's registered root
FIRST_DATE = date(2015, 1, 1)
DAYS = 3653  # ten years of study dates

# fmt: off
SURNAMES = (
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
    "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE",
    "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ", "CLARK",
    "RAMIREZ", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "TORRES",
    "NGUYEN", "HILL", "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL", "RIVERA", "CAMPBELL",
    "MITCHELL", "CARTER", "ROBERTS", "MUELLER", "SCHMIDT", "SCHNEIDER", "FISCHER", "WEBER", "MEYER",
    "WAGNER", "BECKER", "SCHULZ", "HOFFMANN", "DUBOIS", "DURAND", "LEROY", "MOREAU", "SIMON",
    "LAURENT", "LEFEBVRE", "MICHEL", "ROSSI", "RUSSO", "FERRARI", "ESPOSITO", "BIANCHI", "ROMANO",
    "COLOMBO", "RICCI", "MARINO", "GRECO", "JANSSEN", "DEVRIES", "VANDENBERG", "BAKKER", "VISSER",
    "SMIT", "MEIJER", "KOWALSKI", "NOWAK", "WISNIEWSKI", "WOJCIK", "SILVA", "SANTOS", "FERREIRA",
    "PEREIRA", "OLIVEIRA", "COSTA", "MARTINS", "JOHANSSON", "ANDERSSON", "KARLSSON", "NILSSON",
    "ERIKSSON", "LARSSON", "OLSEN", "HANSEN", "MURPHY", "KELLY", "OBRIEN", "WALSH", "BYRNE", "RYAN",
    "MARSHALL", "MARQUEZ", "SMITHSON", "JOHNSTON",
)
GIVEN_NAMES = (
    "JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID",
    "ELIZABETH", "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS", "SARAH",
    "CHARLES", "KAREN", "MARIA", "ANNA", "LUCA", "SOFIA", "HANS", "CLAIRE", "PIERRE", "ELENA",
    "JAN", "EVA", "LARS", "INGRID", "PEDRO", "ANA", "SEAN", "AOIFE",
)
# fmt: on
# Primary modality of a study and its share of a general hospital's studies (percent).
MODALITY_SHARES = {"CT": 24, "MR": 20, "CR": 14, "DX": 12, "US": 12, "MG": 7, "PT": 6, "NM": 5}
MODALITIES = (*MODALITY_SHARES, "SR")
REPORT_SHARE = 0.25  # studies that also hold a structured report (an SR series)
DESCRIPTIONS = {
    "CT": ("CT CHEST W CONTRAST", "CT HEAD WO CONTRAST", "CT ABDOMEN PELVIS W"),
    "MR": ("MR BRAIN W WO CONTRAST", "MR KNEE LEFT", "MR LUMBAR SPINE"),
    "CR": ("XR CHEST 2 VIEWS", "XR HAND RIGHT"),
    "DX": ("XR CHEST PA", "XR ANKLE 3 VIEWS"),
    "US": ("US ABDOMEN COMPLETE", "US THYROID"),
    "MG": ("MG SCREENING BILATERAL",),
    "PT": ("PET CT WHOLE BODY FDG",),
    "NM": ("NM BONE SCAN WHOLE BODY",),
}
BODY_PARTS = {"CT": "CHEST", "MR": "BRAIN", "MG": "BREAST", "SR": ""}


@dataclass(frozen=True, slots=True)
class Patient:
    patient_id: str
    name: str
    birth_date: str
    sex: str


@dataclass(frozen=True, slots=True)
class Series:
    uid: str
    modality: str
    number: int
    description: str
    instances: int

    def instance_uids(self) -> list[str]:
        return [f"{self.uid}.{n}" for n in range(1, self.instances + 1)]


@dataclass(frozen=True, slots=True)
class Study:
    index: int
    uid: str
    patient: Patient
    date: str
    time: str
    accession: str
    description: str
    series: tuple[Series, ...]

    @property
    def modalities(self) -> frozenset[str]:
        return frozenset(series.modality for series in self.series)

    @property
    def instances(self) -> int:
        return sum(series.instances for series in self.series)


def patient(seed: int, number: int) -> Patient:
    rng = random.Random(f"{seed}-patient-{number}")
    surname, given = rng.choice(SURNAMES), rng.choice(GIVEN_NAMES)
    name = f"{surname}^{given}"
    if rng.random() < 0.3:
        name += f"^{rng.choice('ABCDEFGHJKLMNPRSTW')}"  # a middle initial
    if rng.random() < 0.3:
        name = name.title()  # "Smith^John": matching on names must ignore case
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(90 * 365))
    # 7919 is prime, so number -> ID is one-to-one modulo 10^8.
    patient_id = f"PID{(number * 7919 + 1_000_003) % 10**8:08d}"
    return Patient(patient_id, name, born.strftime("%Y%m%d"), rng.choice("MF"))


def _series(rng: random.Random, study_uid: str, modality: str, instances: int) -> list[Series]:
    """The study's image series (1-3, instances spread evenly) and maybe a one-instance SR."""
    report = rng.random() < REPORT_SHARE and instances > 1
    images = instances - report
    count = min(images, rng.choice((1, 2, 2, 3)))
    description = rng.choice(DESCRIPTIONS[modality])
    series = [
        Series(
            f"{study_uid}.{n + 1}",
            modality,
            n + 1,
            f"{description} {n + 1}",
            images * (n + 1) // count - images * n // count,
        )
        for n in range(count)
    ]
    if report:
        series.append(Series(f"{study_uid}.{count + 1}", "SR", 999, "REPORT", 1))
    return series


def studies(seed: int, count: int, instances_per_study: int) -> Iterator[Study]:
    """`count` studies of `instances_per_study` instances each; about two studies per patient."""
    owners: list[int] = []
    for index in range(count):
        rng = random.Random(f"{seed}-study-{index}")
        owner = index if not owners or rng.random() < 0.5 else owners[rng.randrange(len(owners))]
        owners.append(owner)
        modality = rng.choices(list(MODALITY_SHARES), weights=list(MODALITY_SHARES.values()))[0]
        uid = f"{UID_ROOT}.{seed}.{index + 1}"
        when = FIRST_DATE + timedelta(days=rng.randrange(DAYS))
        yield Study(
            index,
            uid,
            patient(seed, owner),
            when.strftime("%Y%m%d"),
            f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
            f"ACC{(index * 104_729 + 12_345) % 10**9:09d}",  # 104729: prime, so unique
            rng.choice(DESCRIPTIONS[modality]),
            tuple(_series(rng, uid, modality, instances_per_study)),
        )
