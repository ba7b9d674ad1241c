"""Matching keys -> SQL, compiled for SQLite and PostgreSQL without a database (PS3.4 C.2.2.2)."""

from typing import Any

import pytest

from pacs.dicom.matching import (
    AnyOf,
    Constraint,
    EmptyValue,
    Range,
    SingleValue,
    UidList,
    Wildcard,
)
from pacs.index.conditions import clause_for, to_glob_pattern, to_like_pattern
from pacs.index.engine import create_engine

# Engines are only created, never connected: their dialects compile.
SQLITE = create_engine("sqlite+aiosqlite://").dialect
POSTGRES = create_engine("postgresql+asyncpg://pacs@localhost/pacs").dialect
CT, MR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"


def compiled(
    constraint: Constraint, dialect: Any, *, fold_pn: bool = False
) -> tuple[str, list[Any]]:
    clause = clause_for(constraint, fold_pn=fold_pn)
    assert clause is not None
    sql = clause.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return str(sql), [sql.params[name] for name in sql.positiontup or ()]


@pytest.mark.parametrize(
    ("dicom", "like"),
    [
        ("SMITH*", "SMITH%"),
        ("SM?TH", "SM_TH"),
        ("50%_OFF", r"50\%\_OFF"),
        ("*%*", r"%\%%"),
        ("a\\b*", r"a\\b%"),
        ("[x]*", "[x]%"),
        ("*", "%"),
    ],
)
def test_wildcards_become_escaped_like_patterns(dicom: str, like: str) -> None:
    assert to_like_pattern(dicom) == like


@pytest.mark.parametrize(
    ("dicom", "glob"),
    [
        ("SMITH*", "SMITH*"),
        ("SM?TH", "SM?TH"),
        ("50%_OFF", "50%_OFF"),
        ("[x]*", "[[]x]*"),
        ("a\\b]*", "a\\b]*"),
    ],
)
def test_wildcards_become_glob_patterns_with_brackets_escaped(dicom: str, glob: str) -> None:
    assert to_glob_pattern(dicom) == glob


def sv(keyword: str, value: str) -> SingleValue:
    return SingleValue(keyword, value)


# (constraint, fold_pn, SQLite, its parameters, PostgreSQL, its parameters)
Compiled = tuple[Constraint, bool, str, list[Any], str, list[Any]]
CLAUSES: list[Compiled] = [
    (
        sv("PatientID", "P1"),
        False,
        "patient.patient_id = ?",
        ["P1"],
        "patient.patient_id = $1::VARCHAR",
        ["P1"],
    ),
    (
        sv("PatientName", "Doe^Jane"),
        False,
        "patient.patient_name = ?",
        ["Doe^Jane"],
        "patient.patient_name = $1::VARCHAR",
        ["Doe^Jane"],
    ),
    (
        sv("PatientName", "Doe^Jane"),
        True,
        "patient.patient_name_folded = ?",
        ["DOE^JANE"],
        "patient.patient_name_folded = $1::VARCHAR",
        ["DOE^JANE"],
    ),
    (
        sv("StudyDescription", "ct chest"),
        True,  # folding is for person names only
        "study.study_description = ?",
        ["ct chest"],
        "study.study_description = $1::VARCHAR",
        ["ct chest"],
    ),
    (
        sv("SeriesNumber", "+7"),
        False,
        "series.series_number = ?",
        [7],
        "series.series_number = $1::INTEGER",
        [7],
    ),
    (sv("InstanceNumber", "seven"), False, "0", [], "false", []),
    (
        Wildcard("AccessionNumber", "A_1*"),
        False,
        "study.accession_number GLOB ?",
        ["A_1*"],
        "study.accession_number LIKE $1::VARCHAR ESCAPE '\\'",
        ["A\\_1%"],
    ),
    (
        Wildcard("ReferringPhysicianName", "wil?on*"),
        True,
        "study.referring_physician_name_folded GLOB ?",
        ["WIL?ON*"],
        "study.referring_physician_name_folded LIKE $1::VARCHAR ESCAPE '\\'",
        ["WIL_ON%"],
    ),
    (
        Wildcard("PatientID", "*"),  # the blank patient key is no value for '*'
        False,
        "patient.patient_id GLOB ? AND patient.patient_id != ?",
        ["*", ""],
        "patient.patient_id LIKE $1::VARCHAR ESCAPE '\\' AND patient.patient_id != $2::VARCHAR",
        ["%", ""],
    ),
    (
        Range("StudyDate", "20240101", "20240131"),
        False,
        "study.study_date BETWEEN ? AND ?",
        ["20240101", "20240131"],
        "study.study_date BETWEEN $1::VARCHAR AND $2::VARCHAR",
        ["20240101", "20240131"],
    ),
    (
        Range("StudyDate", "20240101", None),
        False,
        "study.study_date >= ?",
        ["20240101"],
        "study.study_date >= $1::VARCHAR",
        ["20240101"],
    ),
    (
        Range("PatientBirthDate", None, "19800101"),
        False,
        "patient.patient_birth_date <= ?",
        ["19800101"],
        "patient.patient_birth_date <= $1::VARCHAR",
        ["19800101"],
    ),
    (
        Range("StudyTime", None, "1015~"),  # '~' must sort after digits: code point order
        False,
        "study.study_time <= ?",
        ["1015~"],
        'study.study_time COLLATE "C" <= $1::VARCHAR',
        ["1015~"],
    ),
    (
        Range("SeriesTime", "0800", "1015~"),
        False,
        "series.series_time BETWEEN ? AND ?",
        ["0800", "1015~"],
        'series.series_time COLLATE "C" BETWEEN $1::VARCHAR AND $2::VARCHAR',
        ["0800", "1015~"],
    ),
    (
        UidList("StudyInstanceUID", ("1.2.3", "1.2.4")),
        False,
        "study.study_instance_uid IN (?, ?)",
        ["1.2.3", "1.2.4"],
        "study.study_instance_uid IN ($1::VARCHAR, $2::VARCHAR)",
        ["1.2.3", "1.2.4"],
    ),
    (
        EmptyValue("AccessionNumber"),
        False,
        "study.accession_number IS NULL",
        [],
        "study.accession_number IS NULL",
        [],
    ),
    (
        EmptyValue("IssuerOfPatientID"),  # the patient key holds '' for "none"
        False,
        "patient.issuer_of_patient_id = ?",
        [""],
        "patient.issuer_of_patient_id = $1::VARCHAR",
        [""],
    ),
    (
        AnyOf("Modality", (sv("Modality", "CT"), Wildcard("Modality", "M?"))),
        False,
        "series.modality = ? OR series.modality GLOB ?",
        ["CT", "M?"],
        "series.modality = $1::VARCHAR OR series.modality LIKE $2::VARCHAR ESCAPE '\\'",
        ["CT", "M_"],
    ),
    (
        sv("ModalitiesInStudy", "CT"),
        False,
        "? || study.modalities_in_study || ? GLOB ?",
        ["\\", "\\", "*\\CT\\*"],
        "$1::VARCHAR || study.modalities_in_study || $2::VARCHAR LIKE $3::VARCHAR ESCAPE '\\'",
        ["\\", "\\", "%\\\\CT\\\\%"],
    ),
    (
        UidList("SOPClassesInStudy", (CT, MR)),
        False,
        "? || study.sop_classes_in_study || ? GLOB ?"
        " OR ? || study.sop_classes_in_study || ? GLOB ?",
        ["\\", "\\", f"*\\{CT}\\*", "\\", "\\", f"*\\{MR}\\*"],
        # the same framing binds serve both terms
        "$1::VARCHAR || study.sop_classes_in_study || $2::VARCHAR LIKE $3::VARCHAR ESCAPE '\\'"
        " OR $1::VARCHAR || study.sop_classes_in_study || $2::VARCHAR LIKE $4::VARCHAR ESCAPE '\\'",
        ["\\", "\\", f"%\\\\{CT}\\\\%", f"%\\\\{MR}\\\\%"],
    ),
    (
        EmptyValue("ModalitiesInStudy"),
        False,
        "study.modalities_in_study IS NULL",
        [],
        "study.modalities_in_study IS NULL",
        [],
    ),
]


@pytest.mark.parametrize(
    "case",
    CLAUSES,
    ids=[f"{type(c[0]).__name__}-{c[0].keyword}-{'fold' if c[1] else 'exact'}" for c in CLAUSES],
)
def test_constraints_compile_for_both_dialects(case: Compiled) -> None:
    constraint, fold_pn, sqlite, sqlite_params, postgres, postgres_params = case

    assert compiled(constraint, SQLITE, fold_pn=fold_pn) == (sqlite, sqlite_params)
    assert compiled(constraint, POSTGRES, fold_pn=fold_pn) == (postgres, postgres_params)


@pytest.mark.parametrize(
    "constraint",
    [
        sv("PatientComments", "x"),  # not a column: matched on the JSON
        Wildcard("OperatorsName", "SMI*"),
        Wildcard("ModalitiesInStudy", "M*"),  # wildcards on joined values need the JSON
        AnyOf("ModalitiesInStudy", (sv("ModalitiesInStudy", "CT"), Wildcard("", "M?"))),
        Wildcard("SeriesNumber", "1*"),  # IS takes no wildcards: the reference matcher decides
    ],
)
def test_keys_sql_cannot_decide_are_left_to_the_reference_matcher(constraint: Constraint) -> None:
    assert clause_for(constraint, fold_pn=False) is None
