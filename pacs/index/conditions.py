"""C-FIND conditions: which keys are columns, and the SQL that matches them (PS3.4 C.2.2.2).

A constraint on a column key becomes a WHERE condition; dialect hooks make a
wildcard a GLOB on SQLite and a LIKE on PostgreSQL, and order TM/DT range ends
by code point. The same code says a condition two ways: `Build` makes the
SQLAlchemy expression, `Trace` records only its shape and values in bind order,
so a query whose shape was seen before (see find) needs no expressions built.
"""

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    SQLColumnExpression,
    String,
    bindparam,
    false,
    literal,
    or_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from pacs.dicom.levels import QueryLevel
from pacs.dicom.matching import (
    AnyOf,
    Constraint,
    EmptyValue,
    Range,
    SingleValue,
    UidList,
    Wildcard,
)
from pacs.index.models import Instance, Patient, Series, Study

__all__ = [
    "COLUMNS",
    "Build",
    "Say",
    "Trace",
    "clause_for",
    "condition_for",
    "to_glob_pattern",
    "to_like_pattern",
]

Column = InstrumentedAttribute[Any]
Expression = SQLColumnExpression[Any]
Table = type[Patient] | type[Study] | type[Series] | type[Instance]

# keyword -> (column, folded column for case-insensitive PN matching)
COLUMNS: dict[str, tuple[Column, Column | None]] = {
    "PatientID": (Patient.patient_id, None),
    "IssuerOfPatientID": (Patient.issuer_of_patient_id, None),
    "PatientName": (Patient.patient_name, Patient.patient_name_folded),
    "PatientBirthDate": (Patient.patient_birth_date, None),
    "PatientSex": (Patient.patient_sex, None),
    "StudyInstanceUID": (Study.study_instance_uid, None),
    "StudyDate": (Study.study_date, None),
    "StudyTime": (Study.study_time, None),
    "AccessionNumber": (Study.accession_number, None),
    "StudyID": (Study.study_id, None),
    "ReferringPhysicianName": (
        Study.referring_physician_name,
        Study.referring_physician_name_folded,
    ),
    "StudyDescription": (Study.study_description, None),
    "SeriesInstanceUID": (Series.series_instance_uid, None),
    "Modality": (Series.modality, None),
    "SeriesNumber": (Series.series_number, None),
    "SeriesDescription": (Series.series_description, None),
    "SeriesDate": (Series.series_date, None),
    "SeriesTime": (Series.series_time, None),
    "BodyPartExamined": (Series.body_part_examined, None),
    "SOPInstanceUID": (Instance.sop_instance_uid, None),
    "SOPClassUID": (Instance.sop_class_uid, None),
    "InstanceNumber": (Instance.instance_number, None),
}
# The patient key holds '' rather than NULL when absent (see models).
EMPTY_IS_BLANK = frozenset({"PatientID", "IssuerOfPatientID"})
INTEGER_KEYS = frozenset({"SeriesNumber", "InstanceNumber"})
HIERARCHY: tuple[Table, ...] = (Patient, Study, Series, Instance)
DEPTH = {QueryLevel.PATIENT: 1, QueryLevel.STUDY: 2, QueryLevel.SERIES: 3, QueryLevel.IMAGE: 4}
# Each level's unique key: always in a match, even when a level's JSON lacks it.
UNIQUE: dict[Table, tuple[str, str, Column]] = {
    Patient: ("00100020", "LO", Patient.patient_id),
    Study: ("0020000D", "UI", Study.study_instance_uid),
    Series: ("0020000E", "UI", Series.series_instance_uid),
    Instance: ("00080018", "UI", Instance.sop_instance_uid),
}
COMPUTED_TAGS = {
    "NumberOfPatientRelatedStudies": ("00201200", "IS"),
    "NumberOfPatientRelatedSeries": ("00201202", "IS"),
    "NumberOfPatientRelatedInstances": ("00201204", "IS"),
    "NumberOfStudyRelatedSeries": ("00201206", "IS"),
    "NumberOfStudyRelatedInstances": ("00201208", "IS"),
    "NumberOfSeriesRelatedInstances": ("00201209", "IS"),
    "ModalitiesInStudy": ("00080061", "CS"),
    "SOPClassesInStudy": ("00080062", "UI"),
}
# Computed keys kept backslash-joined in a study column, like a multi-valued element.
JOINED: dict[str, Column] = {
    "ModalitiesInStudy": Study.modalities_in_study,
    "SOPClassesInStudy": Study.sop_classes_in_study,
}

# The table each SQL-matched key lives in: a key is matched in SQL only when it is joined.
TABLE_OF: dict[str, Table] = {
    **{
        key: table
        for key, (column, _) in COLUMNS.items()
        for table in HIERARCHY
        if column.class_ is table
    },
    **dict.fromkeys(JOINED, Study),
}


class _WildcardMatch(FunctionElement[bool]):
    """(column, LIKE pattern, GLOB pattern): a case-sensitive DICOM wildcard match.

    SQLite's LIKE ignores ASCII case, and a prefix LIKE only uses an index
    built with NOCASE; GLOB is exact and uses our BINARY indexes for a literal
    prefix. (PRAGMA case_sensitive_like would fix LIKE, but SQLite deprecates it.)
    """

    type = Boolean()
    inherit_cache = True
    name = "wildcard_match"
    _is_implicitly_boolean = True  # a predicate already: no "= 1" where booleans are integers


@compiles(_WildcardMatch)
def _like(element: _WildcardMatch, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern, _glob = element.clauses
    return f"{compiler.process(column, **kw)} LIKE {compiler.process(pattern, **kw)} ESCAPE '\\'"


@compiles(_WildcardMatch, "sqlite")
def _glob(element: _WildcardMatch, compiler: SQLCompiler, **kw: Any) -> str:
    column, _like_pattern, pattern = element.clauses
    return f"{compiler.process(column, **kw)} GLOB {compiler.process(pattern, **kw)}"


class _CodePointOrder(FunctionElement[str]):
    """A text column compared by code point, as Python compares str, whatever the collation."""

    type = String()
    inherit_cache = True
    name = "code_point_order"


@compiles(_CodePointOrder)
def _binary(element: _CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)  # SQLite's default collation is BINARY


@compiles(_CodePointOrder, "postgresql")
def _collate_c(element: _CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f'{compiler.process(element.clauses, **kw)} COLLATE "C"'


def to_like_pattern(dicom_pattern: str) -> str:
    """Escape SQL's own wildcards first, then map DICOM '*' and '?' to '%' and '_'."""
    escaped = dicom_pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def to_glob_pattern(dicom_pattern: str) -> str:
    """DICOM '*' and '?' are GLOB's own; only '[' (a character class) needs escaping."""
    return dicom_pattern.replace("[", "[[]")


def _wildcard_values(dicom_pattern: str) -> tuple[str, str]:
    """A wildcard match's bind values, in bind order: the LIKE pattern, then the GLOB one."""
    return to_like_pattern(dicom_pattern), to_glob_pattern(dicom_pattern)


def _framed_pattern(value: str) -> str:
    """One value of a backslash-joined column, as a pattern on the column framed in '\\'."""
    return f"*\\{value}\\*"


Condition_co = TypeVar("Condition_co", covariant=True)
C = TypeVar("C")


class Say(Protocol[Condition_co]):
    """How a constraint's SQL condition is said: built as SQLAlchemy expressions (`Build`),
    or traced (`Trace`) as a shape without values plus the values in bind order."""

    def equals(self, column: Column, value: Any) -> Condition_co: ...
    def is_blank(self, column: Column) -> Condition_co: ...
    def and_not_blank(self, clause: Any, column: Column) -> Condition_co: ...
    def is_null(self, column: Column) -> Condition_co: ...
    def false(self) -> Condition_co: ...
    def one_of(self, column: Column, values: Sequence[str]) -> Condition_co: ...
    def wildcard(self, column: Column, dicom_pattern: str) -> Condition_co: ...
    def has_value(self, column: Column, value: str) -> Condition_co: ...
    def range(self, column: Column, start: str | None, end: str | None) -> Condition_co: ...
    def any_of(self, clauses: Sequence[Any]) -> Condition_co: ...


class Build:
    """The conditions as SQLAlchemy expressions, each value a bind parameter named p0, p1...
    in the order a `Trace` of the same constraints lists the values."""

    def __init__(self) -> None:
        self.count = 0  # bind parameters so far
        self._framed: dict[str, Expression] = {}

    def _bind(self, value: Any, type_: Any, *, expanding: bool = False) -> BindParameter[Any]:
        name = f"p{self.count}"
        self.count += 1
        return bindparam(name, value, type_=type_, expanding=expanding)

    def equals(self, column: Column, value: Any) -> ColumnElement[bool]:
        return column == self._bind(value, column.type)

    def is_blank(self, column: Column) -> ColumnElement[bool]:
        return column == ""

    def and_not_blank(self, clause: ColumnElement[bool], column: Column) -> ColumnElement[bool]:
        return clause & (column != "")

    def is_null(self, column: Column) -> ColumnElement[bool]:
        return column.is_(None)

    def false(self) -> ColumnElement[bool]:
        return false()

    def one_of(self, column: Column, values: Sequence[str]) -> ColumnElement[bool]:
        return column.in_(self._bind(list(values), column.type, expanding=True))

    def _match(self, expression: Expression, dicom_pattern: str) -> ColumnElement[bool]:
        like, glob = (self._bind(value, String()) for value in _wildcard_values(dicom_pattern))
        return _WildcardMatch(expression, like, glob)

    def wildcard(self, column: Column, dicom_pattern: str) -> ColumnElement[bool]:
        return self._match(column, dicom_pattern)

    def has_value(self, column: Column, value: str) -> ColumnElement[bool]:
        # Faster than EXISTS on series.modality at 10k studies: the id-ordered scan
        # stops at a page of matches, and no series row is read.
        framed = self._framed.get(column.key)
        if framed is None:  # one per column: an OR of several values binds it once
            framed = literal("\\", String()) + column + literal("\\", String())
            self._framed[column.key] = framed
        return self._match(framed, _framed_pattern(value))

    def range(self, column: Column, start: str | None, end: str | None) -> ColumnElement[bool]:
        # A TM/DT end carries '~' (see matching); it sorts last only by code point.
        subject: Expression = column
        if (end or "").endswith("~"):
            subject = _CodePointOrder(column)
        if start is None:
            return subject <= self._bind(end, column.type)
        if end is None:
            return subject >= self._bind(start, column.type)
        return subject.between(self._bind(start, column.type), self._bind(end, column.type))

    def any_of(self, clauses: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
        return or_(*clauses)


Step = tuple[Any, ...]
_TRACED = object()  # what a traced condition stands for: not None, so it is SQL's to match


class Trace:
    """The conditions' shape (which statement says them) and their values, built nothing."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.values: list[Any] = []

    def _step(self, *step: Any, values: Sequence[Any] = ()) -> object:
        self.steps.append(step)
        self.values.extend(values)
        return _TRACED

    def mark(self) -> tuple[int, int]:
        return len(self.steps), len(self.values)

    def rewind(self, mark: tuple[int, int]) -> None:
        del self.steps[mark[0] :], self.values[mark[1] :]

    def equals(self, column: Column, value: Any) -> object:
        return self._step("=", str(column), values=(value,))

    def is_blank(self, column: Column) -> object:
        return self._step("blank", str(column))

    def and_not_blank(self, clause: Any, column: Column) -> object:
        return self._step("and not blank", str(column))

    def is_null(self, column: Column) -> object:
        return self._step("null", str(column))

    def false(self) -> object:
        return self._step("false")

    def one_of(self, column: Column, values: Sequence[str]) -> object:
        return self._step("in", str(column), values=(list(values),))

    def wildcard(self, column: Column, dicom_pattern: str) -> object:
        return self._step("wildcard", str(column), values=_wildcard_values(dicom_pattern))

    def has_value(self, column: Column, value: str) -> object:
        values = _wildcard_values(_framed_pattern(value))
        return self._step("has", str(column), values=values)

    def range(self, column: Column, start: str | None, end: str | None) -> object:
        shape = (start is None, end is None, (end or "").endswith("~"))
        values = [value for value in (start, end) if value is not None]
        return self._step("range", str(column), *shape, values=values)

    def any_of(self, clauses: Sequence[Any]) -> object:
        return self._step("or", len(clauses))


def clause_for(constraint: Constraint, *, fold_pn: bool) -> ColumnElement[bool] | None:
    """SQL condition for a constraint on a column key (PS3.4 C.2.2.2); None: match in Python.

    Column keys include ModalitiesInStudy and SOPClassesInStudy, except with wildcards.
    Agrees with `matches`: absent and empty values match nothing but EmptyValue.
    """
    return condition_for(constraint, fold_pn, Build())


def condition_for(constraint: Constraint, fold_pn: bool, say: Say[C]) -> C | None:
    if constraint.keyword in JOINED:
        return _joined_clause(constraint, JOINED[constraint.keyword], say)
    if constraint.keyword not in COLUMNS:
        return None
    column, folded = COLUMNS[constraint.keyword]
    if fold_pn and folded is not None:
        return _clause(constraint, folded, str.upper, say)
    return _clause(constraint, column, lambda text: text, say)


def _clause(
    constraint: Constraint, column: Column, fold: Callable[[str], str], say: Say[C]
) -> C | None:
    keyword = constraint.keyword
    clause: C | None = None
    match constraint:
        case EmptyValue():
            clause = say.is_blank(column) if keyword in EMPTY_IS_BLANK else say.is_null(column)
        case SingleValue(value=value):
            clause = _equals(keyword, column, fold(value), say)
        case UidList(uids=uids):
            clause = say.one_of(column, uids)
        case Wildcard(pattern=pattern) if keyword not in INTEGER_KEYS:  # IS: no wildcards
            clause = say.wildcard(column, fold(pattern))
            if keyword in EMPTY_IS_BLANK and not pattern.strip("*"):
                clause = say.and_not_blank(clause, column)
        case Range(start=start, end=end):
            clause = say.range(column, start, end)
        case AnyOf(parts=parts):
            clauses = [_clause(part, column, fold, say) for part in parts]
            if all(clause is not None for clause in clauses):
                clause = say.any_of(clauses)
    return clause


def _equals(keyword: str, column: Column, value: str, say: Say[C]) -> C:
    if keyword not in INTEGER_KEYS:
        return say.equals(column, value)
    try:
        # IS matching is implementation-defined (CP-2305): "+7" and "007" match 7 here.
        return say.equals(column, int(value))
    except ValueError:
        return say.false()  # no integer column holds it


def _joined_clause(constraint: Constraint, column: Column, say: Say[C]) -> C | None:
    """ModalitiesInStudy/SOPClassesInStudy on their backslash-joined study column."""
    match constraint:
        case EmptyValue():
            return say.is_null(column)
        case SingleValue(value=value):
            values: Sequence[str] = (value,)
        case UidList(uids=uids):
            values = uids
        case AnyOf(parts=parts) if all(isinstance(part, SingleValue) for part in parts):
            values = [part.value for part in parts if isinstance(part, SingleValue)]
        case _:
            return None  # wildcards: the reference matcher on the JSON
    if any(set(value) & set("*?\\") for value in values):
        return None
    return say.any_of([say.has_value(column, value) for value in values])
