"""Matching keys -> SQL, compiled for SQLite and PostgreSQL without a database (PS3.4 C.2.2.2)."""

import re
from typing import Any

import pytest
from sqlalchemy import BindParameter, ColumnElement, false
from sqlalchemy.sql import visitors

from pacs.dicom.matching import (
    AnyOf,
    Constraint,
    EmptyValue,
    Range,
    SingleValue,
    UidList,
    Wildcard,
)
from pacs.index.conditions import (
    Trace,
    clause_for,
    condition_for,
    to_glob_pattern,
    to_like_pattern,
)
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


def bound(constraint: Constraint, dialect: Any, *, fold_pn: bool = False) -> list[Any]:
    return compiled(constraint, dialect, fold_pn=fold_pn)[1]


# What each key matches is tested on real databases (tests/db/test_find.py); these are the
# values the database is asked to match with, which differ by dialect and by folding.
# (constraint, fold_pn, SQLite's values, PostgreSQL's values)
BOUND: list[tuple[Constraint, bool, list[Any], list[Any]]] = [
    (sv("PatientName", "Doe^Jane"), False, ["Doe^Jane"], ["Doe^Jane"]),
    (sv("PatientName", "Doe^Jane"), True, ["DOE^JANE"], ["DOE^JANE"]),
    (sv("StudyDescription", "ct chest"), True, ["ct chest"], ["ct chest"]),  # PN only
    (sv("SeriesNumber", "+7"), False, [7], [7]),  # IS compares as a number
    (Wildcard("AccessionNumber", "A_1*"), False, ["A_1*"], ["A\\_1%"]),
    (Wildcard("ReferringPhysicianName", "wil?on*"), True, ["WIL?ON*"], ["WIL_ON%"]),
    # The blank patient key is no value for '*'.
    (Wildcard("PatientID", "*"), False, ["*", ""], ["%", ""]),
    (EmptyValue("IssuerOfPatientID"), False, [""], [""]),  # the patient key holds ''
    (EmptyValue("AccessionNumber"), False, [], []),  # other columns hold NULL
    (Range("StudyTime", None, "1015~"), False, ["1015~"], ["1015~"]),
    (
        UidList("StudyInstanceUID", ("1.2.3", "1.2.4")),
        False,
        ["1.2.3", "1.2.4"],
        ["1.2.3", "1.2.4"],
    ),
    (
        AnyOf("Modality", (sv("Modality", "CT"), Wildcard("Modality", "M?"))),
        False,
        ["CT", "M?"],
        ["CT", "M_"],
    ),
    # One value of a backslash-joined column: the column framed in '\', matched as a pattern.
    (sv("ModalitiesInStudy", "CT"), False, ["\\", "\\", "*\\CT\\*"], ["\\", "\\", "%\\\\CT\\\\%"]),
]


@pytest.mark.parametrize(
    ("constraint", "fold_pn", "sqlite", "postgres"),
    BOUND,
    ids=[f"{type(c).__name__}-{c.keyword}-{'fold' if f else 'exact'}" for c, f, _, _ in BOUND],
)
def test_each_dialect_is_given_the_values_it_matches_with(
    constraint: Constraint, fold_pn: bool, sqlite: list[Any], postgres: list[Any]
) -> None:
    assert bound(constraint, SQLITE, fold_pn=fold_pn) == sqlite
    assert bound(constraint, POSTGRES, fold_pn=fold_pn) == postgres


WILDCARDS: list[Constraint] = [
    Wildcard("AccessionNumber", "A_1*"),
    Wildcard("PatientName", "smith*"),
    AnyOf("Modality", (sv("Modality", "CT"), Wildcard("Modality", "M?"))),
    sv("ModalitiesInStudy", "CT"),
    UidList("SOPClassesInStudy", (CT, MR)),
]


@pytest.mark.parametrize("constraint", WILDCARDS, ids=lambda c: c.keyword)
def test_sqlite_matches_wildcards_with_glob_as_like_ignores_case(constraint: Constraint) -> None:
    sql, _ = compiled(constraint, SQLITE)

    assert " GLOB " in sql
    assert " LIKE " not in sql


@pytest.mark.parametrize("constraint", WILDCARDS, ids=lambda c: c.keyword)
def test_postgresql_like_patterns_name_the_escape_character_they_use(
    constraint: Constraint,
) -> None:
    sql, _ = compiled(constraint, POSTGRES)

    assert sql.count(" LIKE ") == sql.count(" ESCAPE '\\'") >= 1


@pytest.mark.parametrize(
    ("constraint", "by_code_point"),
    [
        (Range("StudyTime", None, "1015~"), True),  # '~' must sort after every digit
        (Range("SeriesTime", "0800", "1015~"), True),
        (Range("StudyDate", "20240101", "20240131"), False),
    ],
    ids=["time-up-to", "time-between", "date"],
)
def test_postgresql_orders_time_range_ends_by_code_point(
    constraint: Constraint, by_code_point: bool
) -> None:
    # SQLite's default collation already compares by code point; PostgreSQL's may not.
    assert "COLLATE" not in compiled(constraint, SQLITE)[0]
    assert ('COLLATE "C"' in compiled(constraint, POSTGRES)[0]) is by_code_point


def test_an_integer_key_given_no_number_matches_nothing() -> None:
    clause = clause_for(sv("InstanceNumber", "seven"), fold_pn=False)

    assert clause is not None and clause.compare(false())


def built_values(clause: ColumnElement[bool]) -> list[Any]:
    """The values of a built condition's p0, p1... bind parameters, in that order."""
    named = {
        int(element.key[1:]): element.value
        for element in visitors.iterate(clause)
        if isinstance(element, BindParameter) and re.fullmatch(r"p\d+", element.key)
    }
    assert sorted(named) == list(range(len(named)))
    return [named[n] for n in sorted(named)]


TRACED: list[tuple[Constraint, bool]] = [
    *((constraint, fold_pn) for constraint, fold_pn, _, _ in BOUND),
    *((constraint, False) for constraint in WILDCARDS),
    (Range("StudyDate", "20240101", "20240131"), False),
    (sv("InstanceNumber", "seven"), False),
]


@pytest.mark.parametrize(
    ("constraint", "fold_pn"),
    TRACED,
    ids=[f"{type(c).__name__}-{c.keyword}-{'fold' if f else 'exact'}" for c, f in TRACED],
)
def test_a_traced_condition_lists_its_values_in_the_order_the_built_one_binds_them(
    constraint: Constraint, fold_pn: bool
) -> None:
    # A query whose shape was seen before reuses the built statement with the traced values.
    trace = Trace()
    assert condition_for(constraint, fold_pn, trace) is not None
    clause = clause_for(constraint, fold_pn=fold_pn)
    assert clause is not None

    assert trace.values == built_values(clause)


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
