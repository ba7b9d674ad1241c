"""C-FIND against the catalogue: a Query becomes one SELECT per page (PS3.4 C.2.2.2).

Keys kept as columns are matched in SQL (the conditions come from
`pacs.index.conditions`); any other key is matched on the stored DICOM JSON
with the reference matcher of `pacs.dicom.matching`, so every key matches
correctly and the frequent ones at index speed. Pages are keyset-paginated on
the level's id, one read-only statement each (see `pacs.index.reads`): memory
stays flat however many match, and a slow peer holds no connection or
transaction between pages.
"""

from collections import OrderedDict
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    bindparam,
    func,
    select,
)
from sqlalchemy.orm import aliased

from pacs.dicom.json_model import json_key, values_text
from pacs.dicom.levels import QueryLevel
from pacs.dicom.matching import (
    Constraint,
    Query,
    matches,
)
from pacs.index.conditions import (
    COMPUTED_TAGS,
    DEPTH,
    HIERARCHY,
    JOINED,
    TABLE_OF,
    UNIQUE,
    Build,
    Column,
    Expression,
    Table,
    Trace,
    condition_for,
)
from pacs.index.models import Instance, Patient, Series, Study
from pacs.index.reads import Reads

__all__ = ["Finder"]

_STUDIES = aliased(Study, name="patient_study")  # the patient's studies, not the matched one


def _patient_total(expression: Expression) -> Expression:
    return select(expression).where(_STUDIES.patient_fk == Patient.id).scalar_subquery()


@cache  # built once per depth: SQLAlchemy expressions are immutable, and building them costs
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


@cache  # statements are immutable; building the columns and joins costs as much as a read
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
# Building one is as much work as running it. Bounded: an AnyOf of any length is a shape.
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
    build = Build()
    where = []
    for constraint in in_sql:
        condition = condition_for(constraint, fold_pn, build)
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
    trace = Trace()
    in_sql: list[Constraint] = []
    in_python: list[Constraint] = []
    for constraint in query.constraints:
        mark = trace.mark()
        joined = TABLE_OF.get(constraint.keyword) in tables
        if joined and condition_for(constraint, fold_pn, trace) is not None:
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
