"""Finder.find_pages against real SQLite and PostgreSQL: PS3.4 C.2.2.2 matching at every level.

The archive below is small and hand-made; every expected result was worked out
by hand from the standard's rules, not by running the code under test.
"""

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import (
    BasicTextSRStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    UltrasoundImageStorage,
)

from pacs.archive.records import record_for
from pacs.dicom.header import split_by_level
from pacs.dicom.levels import QueryLevel
from pacs.dicom.matching import (
    AnyOf,
    InformationModel,
    Query,
    SingleValue,
    Wildcard,
    matches,
    parse_identifier,
)
from pacs.errors import StoreUnavailable
from pacs.index.engine import AsyncEngine, AsyncSession, async_sessionmaker, create_sessionmaker
from pacs.index.find import Finder
from pacs.index.models import fold_person_name
from pacs.index.reads import Reads
from pacs.index.records import InstanceRecord
from pacs.index.repository import Index
from pacs.index.schema import upgrade_to_head
from pacs.store.blobstore import BlobRef

ROOT = "1.2.826.0.1.3680043.9.7"
PATIENT_ROOT, STUDY_ROOT = InformationModel.PATIENT_ROOT, InformationModel.STUDY_ROOT
PATIENTS: dict[str, dict[str, Any]] = {
    "P1": {
        "PatientID": "PID1",
        "IssuerOfPatientID": "HOSP_A",
        "PatientName": "Smith^John",
        "PatientBirthDate": "19700101",
        "PatientSex": "M",
        "PatientComments": "allergic to latex",
        "OtherPatientNames": "Smyth^Jon",
    },
    "P2": {
        "PatientID": "PID1",
        "IssuerOfPatientID": "HOSP_B",
        "PatientName": "smith^jane",
        "PatientBirthDate": "19850615",
        "PatientSex": "F",
    },
    "P3": {
        "PatientID": "PID3",
        "PatientName": "Doe^Ann=ドウ^アン",
        "OtherPatientNames": "Doe^Anne=ドウ^アン",
    },
}
STUDY_OF = {"S1": "P1", "S2": "P1", "S3": "P2", "S4": "P2", "S5": "P3"}  # study -> patient
STUDIES: dict[str, dict[str, Any]] = {
    "S1": {
        "StudyDate": "20240105",
        "StudyTime": "083000",
        "AccessionNumber": "ACC-001",
        "StudyDescription": "CT CHEST",
        "ReferringPhysicianName": "House^Gregory",
        "NameOfPhysiciansReadingStudy": ["Cuddy^Lisa", "Foreman^Eric"],
        "PatientAge": "053Y",
    },
    "S2": {
        "StudyDate": "20240110",
        "StudyTime": "101530.25",
        "AccessionNumber": "ACC-002",
        "StudyDescription": "MR HEAD",
        "ReferringPhysicianName": "wilson^james",
        "NameOfPhysiciansReadingStudy": "cuddy^lisa",
    },
    "S3": {
        "StudyDate": "20240110",
        "StudyTime": "150000",
        "AccessionNumber": "ACC_100",
        "StudyDescription": "CT ABDOMEN",
    },
    "S4": {"StudyDate": "20231231", "StudyTime": "235959"},
    "S5": {"AccessionNumber": "X%1", "StudyDescription": "CT/MR 50% follow_up"},
}


def pps(date: str, time: str) -> dict[str, str]:
    """Performed Procedure Step start: JSON-only DA and TM keys of the series."""
    return {"PerformedProcedureStepStartDate": date, "PerformedProcedureStepStartTime": time}


SERIES: dict[str, dict[str, Any]] = {
    "S1.1": {"Modality": "CT", "SeriesNumber": 1, "Laterality": "L", "OperatorsName": "Tech^Alice"}
    | {"BodyPartExamined": "CHEST", **pps("20240105", "083500")},
    "S1.2": {"Modality": "SR", "SeriesNumber": 2, "OperatorsName": "tech^bob"},
    "S2.1": {"Modality": "MR", "SeriesNumber": 1, "Laterality": "R", "BodyPartExamined": "HEAD"}
    | pps("20240110", "101600"),
    "S3.1": {"Modality": "CT", "SeriesNumber": 1, "BodyPartExamined": "ABDOMEN"}
    | pps("20240110", "150100"),
    "S4.1": {"Modality": "US", "SeriesNumber": 1},
    "S5.1": {"Modality": "CT", "SeriesNumber": 1},
    "S5.2": {"Modality": "MR", "SeriesNumber": 2},
}
# Sent after the archive above was indexed.
LATER_SERIES: dict[str, dict[str, Any]] = {"S1.3": {"Modality": "MR", "SeriesNumber": 3}}
SOP_CLASS = {
    "CT": CTImageStorage,
    "MR": MRImageStorage,
    "US": UltrasoundImageStorage,
    "SR": BasicTextSRStorage,
}
AXIAL, DERIVED = ["ORIGINAL", "PRIMARY", "AXIAL"], ["DERIVED", "SECONDARY", "AXIAL"]
MR_TYPE, US_TYPE = ["ORIGINAL", "PRIMARY", "M"], ["ORIGINAL", "PRIMARY"]
# Instance -> its ImageType (the SR document has none).
INSTANCES: dict[str, list[str] | None] = {
    "S1.1.1": AXIAL,
    "S1.1.2": DERIVED,
    "S1.2.1": None,
    **dict.fromkeys(["S2.1.1", "S2.1.2", "S2.1.3"], MR_TYPE),
    "S3.1.1": ["ORIGINAL", "PRIMARY", "LOCALIZER"],
    **dict.fromkeys(["S4.1.1", "S4.1.2"], US_TYPE),
    **dict.fromkeys(["S5.1.1", "S5.2.1"], AXIAL),
}


def uid(label: str) -> str:
    """S2.1.3 -> <root>.2.1.3: study, series and instance UIDs follow the labels."""
    return f"{ROOT}.{label[1:]}"


def label_of(uid_value: str) -> str:
    return "S" + uid_value.removeprefix(ROOT + ".")


def instance(label: str) -> InstanceRecord:
    """The record ingest makes of one instance of the archive above (header -> JSON + columns)."""
    study, series = label.rsplit(".", 2)[0], label.rsplit(".", 1)[0]
    patient, study_keys = STUDY_OF[study], STUDIES[study]
    series_keys = SERIES.get(series) or LATER_SERIES[series]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    keys = {
        **PATIENTS[patient],
        **study_keys,
        **series_keys,
        "ImageType": INSTANCES.get(label),
    }
    for keyword, value in keys.items():
        if value is not None:
            setattr(ds, keyword, value)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
        uid(study),
        uid(series),
        uid(label),
    )
    ds.SOPClassUID = SOP_CLASS[series_keys["Modality"]]
    ds.InstanceNumber = int(label.rsplit(".", 1)[1])
    digest = hashlib.sha256(label.encode()).hexdigest()
    return record_for(split_by_level(ds), ExplicitVRLittleEndian, BlobRef(digest, 1), "MOD")


@pytest.fixture
async def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    await upgrade_to_head(engine)
    sessionmaker = create_sessionmaker(engine)
    await Index(sessionmaker).add_instances([instance(label) for label in INSTANCES], "keep")
    return sessionmaker


@pytest.fixture
def finder(sessionmaker: async_sessionmaker[AsyncSession], reads: Reads) -> Finder:
    return Finder(reads)


def identifier(level: str, model: InformationModel, keys: dict[str, Any]) -> Query:
    """A C-FIND identifier as a peer sends it, parsed as the SCP parses it."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    if level in ("SERIES", "IMAGE"):
        ds.StudyInstanceUID = [uid(study) for study in STUDIES]
    if level == "IMAGE":
        ds.SeriesInstanceUID = [uid(series) for series in SERIES]
    for keyword, key_value in keys.items():  # a key given replaces those UID lists
        # '""' is no valid DA/TM/... value, yet it is the empty-value key of every VR.
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        ds.add(DataElement(tag, dictionary_VR(tag), key_value, validation_mode=config.IGNORE))
    return parse_identifier(ds, model)


async def find(finder: Finder, query: Query, *, fold_pn: bool = False) -> list[dict[str, Any]]:
    return [match async for page in finder.find_pages(query, fold_pn=fold_pn) for match in page]


def value(match: dict[str, Any], tag: str) -> Any:
    return match.get(tag, {}).get("Value")


def labels(matches: list[dict[str, Any]], level: str) -> list[str]:
    if level == "PATIENT":
        issuer = {"HOSP_A": "P1", "HOSP_B": "P2", None: "P3"}
        return [issuer[(value(m, "00100021") or [None])[0]] for m in matches]
    unique = {"STUDY": "0020000D", "SERIES": "0020000E", "IMAGE": "00080018"}[level]
    return [label_of(value(m, unique)[0]) for m in matches]


@dataclass(frozen=True)
class Case:
    level: str
    keys: dict[str, Any]
    expected: list[str]
    fold_pn: bool = False
    model: InformationModel = field(default=STUDY_ROOT)

    def __str__(self) -> str:
        keys = ",".join(f"{k}={v!r}" for k, v in self.keys.items())
        return f"{self.level}:{keys}:{'fold' if self.fold_pn else 'exact'}"


def patients(keys: dict[str, Any], expected: list[str], fold_pn: bool = False) -> Case:
    return Case("PATIENT", keys, expected, fold_pn, PATIENT_ROOT)


EMPTY = '""'  # the empty-value match key of PS3.4 C.2.2.2.1; a zero-length value is universal
ALL_STUDIES = ["S1", "S2", "S3", "S4", "S5"]
CASES = [
    # Patient level: single value, the patient key with its issuer, wildcards, ranges.
    patients({"PatientID": "PID1"}, ["P1", "P2"]),
    patients({"PatientID": "PID1", "IssuerOfPatientID": "HOSP_B"}, ["P2"]),
    patients({"PatientID": "PID?"}, ["P1", "P2", "P3"]),
    patients({"PatientID": "*3"}, ["P3"]),
    patients({"IssuerOfPatientID": EMPTY}, ["P3"]),
    patients({"IssuerOfPatientID": "*"}, ["P1", "P2", "P3"]),  # '*' alone: any value, none too
    patients({"PatientName": "Smith^John"}, ["P1"]),
    patients({"PatientName": "SMITH^JOHN"}, []),
    patients({"PatientName": "SMITH^JOHN"}, ["P1"], fold_pn=True),
    patients({"PatientName": "smith*"}, ["P2"]),
    patients({"PatientName": "smith*"}, ["P1", "P2"], fold_pn=True),
    patients({"PatientName": "*^J*"}, ["P1"]),
    patients({"PatientName": "*^J*"}, ["P1", "P2"], fold_pn=True),
    patients({"PatientName": "Doe^Ann=ドウ^アン"}, ["P3"]),
    patients({"PatientName": "*=ドウ*"}, ["P3"]),
    patients({"PatientName": EMPTY}, []),
    patients({"PatientName": ""}, ["P1", "P2", "P3"]),
    patients({"PatientBirthDate": "19700101"}, ["P1"]),
    patients({"PatientBirthDate": "19600101-19751231"}, ["P1"]),
    patients({"PatientBirthDate": "19800101-"}, ["P2"]),
    patients({"PatientBirthDate": "-19800101"}, ["P1"]),
    patients({"PatientBirthDate": EMPTY}, ["P3"]),
    patients({"PatientSex": ["M", "F"]}, ["P1", "P2"]),
    patients({"PatientSex": "F"}, ["P2"]),
    patients({"PatientSex": EMPTY}, ["P3"]),
    # JSON-only patient keys.
    patients({"PatientComments": "*latex*"}, ["P1"]),
    patients({"PatientComments": "*LATEX*"}, [], fold_pn=True),  # LT, not PN: exact
    patients({"PatientComments": EMPTY}, ["P2", "P3"]),
    patients({"OtherPatientNames": "Smyth^Jon"}, ["P1"]),
    patients({"OtherPatientNames": "Doe^Anne=ドウ^アン"}, ["P3"]),
    patients({"OtherPatientNames": "*=ドウ^アン"}, ["P3"]),
    patients({"OtherPatientNames": "SMYTH^JON"}, []),
    patients({"OtherPatientNames": "SMYTH^JON"}, ["P1"], fold_pn=True),
    # Study level, patient keys joined (Study Root).
    Case("STUDY", {"PatientID": "PID1"}, ["S1", "S2", "S3", "S4"]),
    Case("STUDY", {"PatientID": "PID1", "IssuerOfPatientID": "HOSP_A"}, ["S1", "S2"]),
    Case("STUDY", {"PatientName": "smith*"}, ["S3", "S4"]),
    Case("STUDY", {"PatientName": "smith*"}, ["S1", "S2", "S3", "S4"], fold_pn=True),
    Case("STUDY", {"StudyDate": "20240110"}, ["S2", "S3"]),
    Case("STUDY", {"StudyDate": "20240101-20240131"}, ["S1", "S2", "S3"]),
    Case("STUDY", {"StudyDate": "-20240105"}, ["S1", "S4"]),
    Case("STUDY", {"StudyDate": "20240106-"}, ["S2", "S3"]),
    Case("STUDY", {"StudyDate": EMPTY}, ["S5"]),
    Case("STUDY", {"StudyDate": ""}, ALL_STUDIES),
    Case("STUDY", {"StudyTime": "101530.25"}, ["S2"]),
    Case("STUDY", {"StudyTime": "1000-1016"}, ["S2"]),
    Case("STUDY", {"StudyTime": "-1015"}, ["S1", "S2"]),  # 101530.25 is within 10:15
    Case("STUDY", {"StudyTime": "1500-"}, ["S3", "S4"]),
    Case("STUDY", {"StudyTime": EMPTY}, ["S5"]),
    Case("STUDY", {"AccessionNumber": "ACC_100"}, ["S3"]),
    Case("STUDY", {"AccessionNumber": "ACC_*"}, ["S3"]),  # '_' is no wildcard in DICOM
    Case("STUDY", {"AccessionNumber": "ACC-00?"}, ["S1", "S2"]),
    Case("STUDY", {"AccessionNumber": "X%1"}, ["S5"]),
    Case("STUDY", {"AccessionNumber": "*%*"}, ["S5"]),  # nor '%'
    Case("STUDY", {"AccessionNumber": "acc*"}, [], fold_pn=True),  # SH, not PN: exact
    Case("STUDY", {"AccessionNumber": EMPTY}, ["S4"]),
    Case("STUDY", {"StudyDescription": "*CT*"}, ["S1", "S3", "S5"]),
    Case("STUDY", {"StudyDescription": "*_*"}, ["S5"]),
    Case("STUDY", {"StudyDescription": "ct*"}, []),
    Case("STUDY", {"StudyDescription": EMPTY}, ["S4"]),
    Case("STUDY", {"StudyInstanceUID": [uid("S1"), uid("S3")]}, ["S1", "S3"]),
    Case("STUDY", {"StudyInstanceUID": uid("S2")}, ["S2"]),
    Case("STUDY", {"ReferringPhysicianName": "WILSON^JAMES"}, []),
    Case("STUDY", {"ReferringPhysicianName": "WILSON^JAMES"}, ["S2"], fold_pn=True),
    Case("STUDY", {"ReferringPhysicianName": "wil*"}, ["S2"]),
    Case("STUDY", {"ReferringPhysicianName": EMPTY}, ["S3", "S4", "S5"]),
    # JSON-only study keys, multi-valued PN among them.
    Case("STUDY", {"NameOfPhysiciansReadingStudy": "Cuddy^Lisa"}, ["S1"]),
    Case("STUDY", {"NameOfPhysiciansReadingStudy": "CUDDY^LISA"}, ["S1", "S2"], fold_pn=True),
    Case("STUDY", {"NameOfPhysiciansReadingStudy": "Foreman*"}, ["S1"]),
    Case("STUDY", {"NameOfPhysiciansReadingStudy": EMPTY}, ["S3", "S4", "S5"]),
    Case("STUDY", {"PatientAge": "053Y"}, ["S1"]),
    # Computed study keys.
    Case("STUDY", {"ModalitiesInStudy": "CT"}, ["S1", "S3", "S5"]),
    Case("STUDY", {"ModalitiesInStudy": ["MR", "US"]}, ["S2", "S4", "S5"]),
    Case("STUDY", {"ModalitiesInStudy": "M*"}, ["S2", "S5"]),
    Case("STUDY", {"ModalitiesInStudy": "?R"}, ["S1", "S2", "S5"]),
    Case("STUDY", {"ModalitiesInStudy": "C"}, []),
    Case("STUDY", {"ModalitiesInStudy": EMPTY}, []),
    Case("STUDY", {"SOPClassesInStudy": BasicTextSRStorage}, ["S1"]),
    Case(
        "STUDY", {"SOPClassesInStudy": [MRImageStorage, UltrasoundImageStorage]}, ["S2", "S4", "S5"]
    ),
    Case("STUDY", {"NumberOfStudyRelatedSeries": "2"}, ["S1", "S5"]),
    Case("STUDY", {"NumberOfStudyRelatedInstances": "3"}, ["S1", "S2"]),
    Case("STUDY", {"StudyDate": "20240110", "ModalitiesInStudy": "CT"}, ["S3"]),
    # Series level (StudyInstanceUID lists every study).
    Case("SERIES", {"Modality": "CT"}, ["S1.1", "S3.1", "S5.1"]),
    Case("SERIES", {"Modality": ["MR", "SR"]}, ["S1.2", "S2.1", "S5.2"]),
    Case("SERIES", {"Modality": "?R"}, ["S1.2", "S2.1", "S5.2"]),
    Case("SERIES", {"SeriesNumber": "2"}, ["S1.2", "S5.2"]),
    Case("SERIES", {"SeriesNumber": "+2"}, ["S1.2", "S5.2"]),  # IS compares as a number
    Case("SERIES", {"BodyPartExamined": EMPTY}, ["S1.2", "S4.1", "S5.1", "S5.2"]),
    Case("SERIES", {"Laterality": "L"}, ["S1.1"]),
    Case("SERIES", {"Laterality": EMPTY}, ["S1.2", "S3.1", "S4.1", "S5.1", "S5.2"]),
    Case("SERIES", {"OperatorsName": "TECH^*"}, []),
    Case("SERIES", {"OperatorsName": "Tech^*"}, ["S1.1"]),
    Case("SERIES", {"OperatorsName": "TECH^*"}, ["S1.1", "S1.2"], fold_pn=True),
    Case("SERIES", {"PerformedProcedureStepStartDate": "20240101-20240109"}, ["S1.1"]),
    Case("SERIES", {"PerformedProcedureStepStartDate": "20240110-"}, ["S2.1", "S3.1"]),
    Case("SERIES", {"PerformedProcedureStepStartTime": "-1016"}, ["S1.1", "S2.1"]),
    Case("SERIES", {"PerformedProcedureStepStartTime": "1016-"}, ["S2.1", "S3.1"]),
    Case("SERIES", {"NumberOfSeriesRelatedInstances": "2"}, ["S1.1", "S4.1"]),
    Case("SERIES", {"StudyInstanceUID": uid("S1")}, ["S1.1", "S1.2"]),  # one study's series
    # Instance level (StudyInstanceUID and SeriesInstanceUID list every one).
    Case("IMAGE", {"InstanceNumber": "2"}, ["S1.1.2", "S2.1.2", "S4.1.2"]),
    Case("IMAGE", {"SOPClassUID": BasicTextSRStorage}, ["S1.2.1"]),
    Case("IMAGE", {"SOPInstanceUID": [uid("S5.2.1"), uid("S1.1.1")]}, ["S1.1.1", "S5.2.1"]),
    Case("IMAGE", {"ImageType": "LOCALIZER"}, ["S3.1.1"]),
    Case("IMAGE", {"ImageType": "AX*"}, ["S1.1.1", "S1.1.2", "S5.1.1", "S5.2.1"]),
    Case("IMAGE", {"ImageType": ["DERIVED", "M"]}, ["S1.1.2", "S2.1.1", "S2.1.2", "S2.1.3"]),
    Case("IMAGE", {"ImageType": EMPTY}, ["S1.2.1"]),
    Case(  # one series' instances
        "IMAGE",
        {"StudyInstanceUID": uid("S2"), "SeriesInstanceUID": uid("S2.1")},
        ["S2.1.1", "S2.1.2", "S2.1.3"],
    ),
]


async def test_matching_follows_the_standard(finder: Finder, subtests: pytest.Subtests) -> None:
    # Subtests, not parametrize: one seeded database serves every case.
    for case in CASES:
        with subtests.test(msg=str(case)):
            query = identifier(case.level, case.model, case.keys)

            found = await find(finder, query, fold_pn=case.fold_pn)

            assert labels(found, case.level) == case.expected


async def test_a_key_sql_says_only_in_part_leaves_the_next_key_its_own_values(
    finder: Finder,
) -> None:
    # IS takes no wildcards in SQL, so the whole value list goes to the reference matcher
    # (pydicom refuses "2*" as IS off the wire; a Query can still hold it); the Modality
    # list after it must bind "MR" and "SR", not the 3 traced before the list fell through.
    query = identifier("SERIES", STUDY_ROOT, {"Modality": ["MR", "SR"]})
    parts = (SingleValue("SeriesNumber", "3"), Wildcard("SeriesNumber", "2*"))
    series_number = AnyOf("SeriesNumber", parts)
    query = replace(query, constraints=(series_number, *query.constraints))

    found = await find(finder, query)

    assert labels(found, "SERIES") == ["S1.2", "S5.2"]


async def test_a_match_merges_the_json_of_its_level_and_every_parent(finder: Finder) -> None:
    query = identifier("IMAGE", STUDY_ROOT, {"SOPInstanceUID": uid("S1.1.2")})

    [match] = await find(finder, query)

    assert value(match, "00100010") == [{"Alphabetic": "Smith^John"}]  # patient
    assert value(match, "00100020") == ["PID1"]
    assert value(match, "00080020") == ["20240105"]  # study
    assert value(match, "0020000D") == [uid("S1")]
    assert value(match, "00080060") == ["CT"]  # series
    assert value(match, "0020000E") == [uid("S1.1")]
    assert value(match, "00080018") == [uid("S1.1.2")]  # instance
    assert value(match, "00080008") == DERIVED
    assert value(match, "00200013") == [2]
    assert list(match) == sorted(match)  # tag order, as in a data set
    assert not {"00080061", "00201208", "00201209"} & set(match)  # computed: only when asked


async def test_computed_attributes_are_returned_when_asked(finder: Finder) -> None:
    counted = ("Studies", "Series", "Instances")
    keys = {f"NumberOfPatientRelated{what}": "" for what in counted}
    query = identifier("PATIENT", PATIENT_ROOT, keys)

    found = await find(finder, query)

    counts = [[value(m, tag)[0] for tag in ("00201200", "00201202", "00201204")] for m in found]
    assert labels(found, "PATIENT") == ["P1", "P2", "P3"]
    assert counts == [[2, 3, 6], [2, 2, 3], [1, 2, 2]]
    assert found[0]["00201200"] == {"vr": "IS", "Value": [2]}


async def test_study_counts_and_modalities_follow_later_instances(
    finder: Finder, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    computed = ["NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"]
    computed += ["ModalitiesInStudy", "SOPClassesInStudy"]
    query = identifier(
        "STUDY", STUDY_ROOT, {"StudyInstanceUID": uid("S1")} | dict.fromkeys(computed, "")
    )
    [before] = await find(finder, query)
    later = [instance("S1.3.1"), instance("S1.3.2")]
    await Index(sessionmaker).add_instances(later, "keep")

    [after] = await find(finder, query)

    tags = ("00201206", "00201208", "00080061")
    assert [value(before, tag) for tag in tags] == [[2], [3], ["CT", "SR"]]
    assert [value(after, tag) for tag in tags] == [[3], [5], ["CT", "MR", "SR"]]
    assert after["00080061"]["vr"] == "CS"
    assert after["00080062"] == {
        "vr": "UI",
        "Value": [CTImageStorage, MRImageStorage, BasicTextSRStorage],
    }


@pytest.mark.parametrize(
    ("keys", "sizes"),
    [
        ({}, [2, 2, 1]),
        # Matched on the JSON: S1 and S2 pass; S3 and S4 (the second SQL page) and S5
        # (the third) do not, and those pages are not yielded.
        ({"NameOfPhysiciansReadingStudy": "*?*"}, [2]),
        ({"StudyDescription": "*CT*"}, [2, 1]),
    ],
)
async def test_pages_hold_at_most_page_size_and_are_never_empty(
    finder: Finder, keys: dict[str, Any], sizes: list[int]
) -> None:
    query = identifier("STUDY", STUDY_ROOT, keys)

    pages = [page async for page in finder.find_pages(query, fold_pn=False, page_size=2)]

    assert [len(page) for page in pages] == sizes


async def test_an_unusable_database_is_store_unavailable(reads: Reads) -> None:
    finder = Finder(reads)  # no tables: never migrated
    query = identifier("STUDY", STUDY_ROOT, {"PatientID": "PID1"})

    with pytest.raises(StoreUnavailable):
        await find(finder, query)


@pytest.fixture
async def one_study(engine: AsyncEngine, reads: Reads) -> AsyncIterator[Finder]:
    await upgrade_to_head(engine)
    sessionmaker = create_sessionmaker(engine)
    await Index(sessionmaker).add_instances([instance("S5.1.1")], "keep")
    yield Finder(reads)


async def store_names(engine: AsyncEngine, text: str) -> None:
    """Give the one study and its patient `text` as description and name, as ingest would."""
    first, second = ("?", "?") if engine.dialect.name == "sqlite" else ("$1", "$2")
    stored = text or None  # the index keeps absent and empty alike, as NULL
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"UPDATE study SET study_description = {first}", (stored,))
        await conn.exec_driver_sql(
            f"UPDATE patient SET patient_name = {first}, patient_name_folded = {second}",
            (stored, fold_person_name(text)),
        )


# SQL's own wildcards and escapes, GLOB's '[', case pairs, and 'ß', which upper-cases to 'SS'.
PATTERN_CHARS = "aAbB*?%_\\[]!^-.=é ß"


# One archive serves every example, and no example database is written into the work tree.
REUSED_ARCHIVE = [HealthCheck.function_scoped_fixture]


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=REUSED_ARCHIVE)
@given(
    text=st.text(PATTERN_CHARS, max_size=8),
    pattern=st.text(PATTERN_CHARS, min_size=1, max_size=6).filter(lambda p: "*" in p or "?" in p),
    fold_pn=st.booleans(),
)
async def test_sql_wildcards_agree_with_the_reference_matcher(
    engine: AsyncEngine, one_study: Finder, text: str, pattern: str, fold_pn: bool
) -> None:
    """StudyDescription always matches exactly, PatientName folded when fold_pn."""
    await store_names(engine, text)

    for keyword in ("StudyDescription", "PatientName"):
        constraint = Wildcard(keyword, pattern)
        query = Query(STUDY_ROOT, QueryLevel.STUDY, (constraint,), ())
        found = await find(one_study, query, fold_pn=fold_pn)

        fold = fold_pn and keyword == "PatientName"
        assert bool(found) == matches(constraint, text, fold_case=fold), keyword
