"""C-FIND against the catalogue: a Query becomes one SELECT per page (PS3.4 C.2.2.2).

Keys kept as columns are matched in SQL; any other key is matched on the
stored DICOM JSON with the reference matcher of `pacs.dicom.matching`, so every
key matches correctly and the frequent ones at index speed. Pages are
keyset-paginated on the level's id, one short transaction each: memory stays
flat however many match, and a slow peer holds no connection between pages.
"""

from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    Integer,
    Select,
    SQLColumnExpression,
    String,
    bindparam,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from pacs.dicom.json_model import json_key, values_text
from pacs.dicom.levels import QueryLevel
from pacs.dicom.matching import (
    AnyOf,
    Constraint,
    EmptyValue,
    Query,
    Range,
    SingleValue,
    UidList,
    Wildcard,
    matches,
)
from pacs.index.models import Instance, Patient, Series, Study
from pacs.index.reads import Reads

__all__ = ["COLUMNS", "Finder", "clause_for", "to_glob_pattern", "to_like_pattern"]

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


class _Say(Protocol[Condition_co]):
    """How a constraint's SQL condition is said: built as SQLAlchemy expressions (`_Build`),
    or traced (`_Trace`) as a shape without values plus the values in bind order."""

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


class _Build:
    """The conditions as SQLAlchemy expressions, each value a bind parameter named p0, p1...
    in the order a `_Trace` of the same constraints lists the values."""

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


class _Trace:
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
    return _condition(constraint, fold_pn, _Build())


def _condition(constraint: Constraint, fold_pn: bool, say: _Say[C]) -> C | None:
    if constraint.keyword in JOINED:
        return _joined_clause(constraint, JOINED[constraint.keyword], say)
    if constraint.keyword not in COLUMNS:
        return None
    column, folded = COLUMNS[constraint.keyword]
    if fold_pn and folded is not None:
        return _clause(constraint, folded, str.upper, say)
    return _clause(constraint, column, lambda text: text, say)


def _clause(
    constraint: Constraint, column: Column, fold: Callable[[str], str], say: _Say[C]
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


def _equals(keyword: str, column: Column, value: str, say: _Say[C]) -> C:
    if keyword not in INTEGER_KEYS:
        return say.equals(column, value)
    try:
        # IS matching is implementation-defined (CP-2305): "+7" and "007" match 7 here.
        return say.equals(column, int(value))
    except ValueError:
        return say.false()  # no integer column holds it


def _joined_clause(constraint: Constraint, column: Column, say: _Say[C]) -> C | None:
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


_STUDIES = aliased(Study, name="patient_study")  # the patient's studies, not the matched one


def _patient_total(expression: Expression) -> Expression:
    return select(expression).where(_STUDIES.patient_fk == Patient.id).scalar_subquery()


@cache  # built once per depth: SQLAlchemy expressions are immutable, and building them cost
def _computed_columns(depth: int) -> dict[str, Expression]:
    """Computed attributes (PS3.4 C.6.1.1.2 - C.6.2.1.2) the joined tables can give."""
    columns: dict[str, Expression] = {
        "NumberOfPatientRelatedStudies": _patient_total(func.count(_STUDIES.id)),
        "NumberOfPatientRelatedSeries": _patient_total(
            func.coalesce(func.sum(_STUDIES.number_of_series), 0)
        ),
        "NumberOfPatientRelatedInstances": _patient_total(
            func.coalesce(func.sum(_STUDIES.number_of_instances), 0)
        ),
    }
    if depth >= DEPTH[QueryLevel.STUDY]:
        columns["NumberOfStudyRelatedSeries"] = Study.number_of_series
        columns["NumberOfStudyRelatedInstances"] = Study.number_of_instances
        columns.update(JOINED)
    if depth >= DEPTH[QueryLevel.SERIES]:
        columns["NumberOfSeriesRelatedInstances"] = Series.number_of_instances
    return columns


def _matches_json(constraint: Constraint, merged: dict[str, Any], fold_pn: bool) -> bool:
    tag = json_key(constraint.keyword)
    element = merged.get(tag) if tag is not None else None
    fold = fold_pn and element is not None and element.get("vr") == "PN"
    return matches(constraint, values_text(element), fold_case=fold)


def _element(vr: str, values: list[Any]) -> dict[str, Any]:
    return {"vr": vr, "Value": values} if values else {"vr": vr}


def _computed_values(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value.split("\\") if isinstance(value, str) else [int(value)]


PARENT_KEY: dict[Table, Column] = {
    Study: Study.patient_fk,
    Series: Series.study_fk,
    Instance: Instance.series_fk,
}


@cache  # statements are immutable; building the columns and joins cost as much as a read
def _candidates(tables: tuple[Table, ...], computed: tuple[str, ...]) -> Select[Any]:
    """The SELECT of a level's rows joined to their parents, before any condition."""
    available = _computed_columns(len(tables))
    statement = select(
        tables[-1].id,
        *(t.attributes for t in tables),
        *(UNIQUE[t][2] for t in tables),
        *(available[name] for name in computed),
    ).select_from(Patient)
    for parent, child in pairwise(tables):
        statement = statement.join(child, PARENT_KEY[child] == parent.id)
    return statement


@dataclass(frozen=True, slots=True)
class _Plan:
    """One query's statement, its values, and what is left to match on the JSON."""

    tables: tuple[Table, ...]
    statement: Select[Any]  # bind parameters p0, p1... then after and limit
    params: dict[str, Any]
    in_python: tuple[Constraint, ...]
    computed: tuple[str, ...]
    fold_pn: bool

    def page(self, after: int, limit: int) -> dict[str, Any]:
        """The values of the next page's statement: rows of the level with ids above `after`."""
        return {**self.params, "after": after, "limit": limit}

    def match(self, row: Sequence[Any]) -> dict[str, Any] | None:
        """The merged DICOM JSON of a candidate, or None when a JSON-side key rejects it."""
        depth = len(self.tables)
        merged: dict[str, Any] = {}
        for attributes in row[1 : 1 + depth]:
            merged.update(attributes or {})
        for table, value in zip(self.tables, row[1 + depth : 1 + 2 * depth], strict=True):
            tag, vr, _column = UNIQUE[table]
            merged.setdefault(tag, _element(vr, [value] if value else []))
        for name, value in zip(self.computed, row[1 + 2 * depth :], strict=True):
            tag, vr = COMPUTED_TAGS[name]
            merged[tag] = _element(vr, _computed_values(value))
        if not all(_matches_json(c, merged, self.fold_pn) for c in self.in_python):
            return None
        return dict(sorted(merged.items()))


# A query's statement depends on its shape only (level, return keys, how each key is
# matched), not on its values: a site sends a few shapes, each built and compiled once.
# Building one cost about as much as running it. Bounded: an AnyOf of any length is a shape.
_STATEMENTS_KEPT = 256
_statements: OrderedDict[tuple[Any, ...], Select[Any]] = OrderedDict()


def _statement(
    shape: tuple[Any, ...],
    tables: tuple[Table, ...],
    computed: tuple[str, ...],
    in_sql: Sequence[Constraint],
    *,
    fold_pn: bool,
    values: int,
) -> Select[Any]:
    found = _statements.get(shape)
    if found is not None:
        _statements.move_to_end(shape)
        return found
    build = _Build()
    where = []
    for constraint in in_sql:
        condition = _condition(constraint, fold_pn, build)
        assert condition is not None, "traced as SQL's, so built as SQL"
        where.append(condition)
    # A bind the trace has no value for would run with the first query's value.
    assert build.count == values, f"{build.count} bind parameters, {values} traced values"
    table = tables[-1]
    statement = (
        _candidates(tables, computed)
        .where(table.id > bindparam("after", type_=Integer()), *where)
        .order_by(table.id)
        .limit(bindparam("limit", type_=Integer()))
    )
    _statements[shape] = statement
    if len(_statements) > _STATEMENTS_KEPT:
        _statements.popitem(last=False)
    return statement


def _plan(query: Query, fold_pn: bool) -> _Plan:
    tables = HIERARCHY[: DEPTH[query.level]]
    trace = _Trace()
    in_sql: list[Constraint] = []
    in_python: list[Constraint] = []
    for constraint in query.constraints:
        mark = trace.mark()
        joined = TABLE_OF.get(constraint.keyword) in tables
        if joined and _condition(constraint, fold_pn, trace) is not None:
            in_sql.append(constraint)
        else:
            trace.rewind(mark)  # an AnyOf may have traced parts before one fell through
            in_python.append(constraint)
    available = _computed_columns(len(tables))
    wanted = {*query.return_keys, *(c.keyword for c in query.constraints)}
    computed = tuple(name for name in COMPUTED_TAGS if name in wanted and name in available)
    shape = (len(tables), computed, fold_pn, tuple(trace.steps))
    values = len(trace.values)
    statement = _statement(shape, tables, computed, in_sql, fold_pn=fold_pn, values=values)
    params = {f"p{number}": value for number, value in enumerate(trace.values)}
    return _Plan(tables, statement, params, tuple(in_python), computed, fold_pn)


class Finder:
    """C-FIND matching over the index (PS3.4 C.2.2.2, C.4.1); StoreUnavailable on DB failure."""

    def __init__(self, reads: Reads) -> None:
        self._reads = reads

    async def find_pages(
        self, query: Query, *, fold_pn: bool, page_size: int = 100
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Yield the matches in pages of at most page_size, never an empty page.

        Each match is the DICOM JSON of the matched entity merged with its
        parents', plus the computed attributes the query names. `fold_pn`
        matches person names case-insensitively.
        """
        if page_size < 1:
            raise ValueError(f"page_size must be positive, not {page_size}")
        plan = _plan(query, fold_pn)
        after = 0  # ids start at 1
        while True:
            rows = await self._reads.run(plan.statement, plan.page(after, page_size))
            page = [match for row in rows if (match := plan.match(row)) is not None]
            if page:
                yield page
            if len(rows) < page_size:
                return
            after = int(rows[-1][0])
