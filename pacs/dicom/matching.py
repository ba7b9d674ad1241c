"""C-FIND identifiers as queries: matching kinds of PS3.4 C.2.2.2 and the hierarchy of C.4.1.

`parse_identifier` turns a request identifier into a `Query`: the level, the
constraints on matching keys and the keys to return. `matches` is the
reference matcher in pure Python: the index's SQL must agree with it.
"""

import fnmatch
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

from pacs.dicom.levels import QueryLevel, level_of
from pacs.errors import InvalidIdentifier

RANGE_VRS = frozenset({"DA", "TM", "DT"})
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
UNIQUE_KEYS = {
    QueryLevel.PATIENT: "PatientID",
    QueryLevel.STUDY: "StudyInstanceUID",
    QueryLevel.SERIES: "SeriesInstanceUID",
    QueryLevel.IMAGE: "SOPInstanceUID",
}
# Keys a response may carry whatever the level: not matching keys.
ALWAYS_ALLOWED = frozenset(
    {
        "QueryRetrieveLevel",
        "SpecificCharacterSet",
        "RetrieveAETitle",
        "TimezoneOffsetFromUTC",
        "InstanceAvailability",
    }
)
# Computed at STUDY/PATIENT level from the index (PS3.4 C.6.1.1.2 - C.6.2.1.2).
COMPUTED = {
    "NumberOfPatientRelatedStudies": QueryLevel.PATIENT,
    "NumberOfPatientRelatedSeries": QueryLevel.PATIENT,
    "NumberOfPatientRelatedInstances": QueryLevel.PATIENT,
    "NumberOfStudyRelatedSeries": QueryLevel.STUDY,
    "NumberOfStudyRelatedInstances": QueryLevel.STUDY,
    "ModalitiesInStudy": QueryLevel.STUDY,
    "SOPClassesInStudy": QueryLevel.STUDY,
    "NumberOfSeriesRelatedInstances": QueryLevel.SERIES,
}


class InformationModel(StrEnum):
    """Query/Retrieve information models (PS3.4 C.6) by their FIND SOP Class UID."""

    PATIENT_ROOT = "1.2.840.10008.5.1.4.1.2.1.1"
    STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"
    PATIENT_STUDY_ONLY = "1.2.840.10008.5.1.4.1.2.3.1"

    @property
    def levels(self) -> tuple[QueryLevel, ...]:
        if self is InformationModel.STUDY_ROOT:
            return (QueryLevel.STUDY, QueryLevel.SERIES, QueryLevel.IMAGE)
        if self is InformationModel.PATIENT_STUDY_ONLY:
            return (QueryLevel.PATIENT, QueryLevel.STUDY)
        return (QueryLevel.PATIENT, QueryLevel.STUDY, QueryLevel.SERIES, QueryLevel.IMAGE)


@dataclass(frozen=True, slots=True)
class SingleValue:
    keyword: str
    value: str


@dataclass(frozen=True, slots=True)
class Wildcard:
    keyword: str
    pattern: str  # DICOM '*' and '?'


@dataclass(frozen=True, slots=True)
class Range:
    keyword: str
    start: str | None
    end: str | None


@dataclass(frozen=True, slots=True)
class UidList:
    keyword: str
    uids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EmptyValue:
    """`""`: matches only where the attribute is absent or has no value (PS3.4 C.2.2.2.1)."""

    keyword: str


@dataclass(frozen=True, slots=True)
class AnyOf:
    """A value list (VM > 1) on a non-UID key: matches when any of its parts matches."""

    keyword: str
    parts: tuple["SingleValue | Wildcard | Range", ...]


Constraint = SingleValue | Wildcard | Range | UidList | EmptyValue | AnyOf


@dataclass(frozen=True, slots=True)
class Query:
    """A C-FIND request: what to match, at which level, and what to return."""

    model: InformationModel
    level: QueryLevel
    constraints: tuple[Constraint, ...]
    return_keys: tuple[str, ...]  # every key of the identifier, in tag order
    character_set: tuple[str, ...] = ()

    def constraints_at(self, level: QueryLevel) -> tuple[Constraint, ...]:
        return tuple(c for c in self.constraints if level_for(c.keyword, self) == level)


def level_for(keyword: str, query: "Query | None" = None) -> QueryLevel:
    """The level a key belongs to (computed keys included)."""
    return COMPUTED.get(keyword) or level_of(keyword)


def _strings(element: DataElement) -> list[str]:
    value = element.value
    values = list(value) if isinstance(value, list | tuple) or element.VM > 1 else [value]
    return [str(v) if v is not None else "" for v in values]


def constraint_for(element: DataElement) -> Constraint | None:
    """The constraint a key asks for; None for universal matching (no value)."""
    keyword, vr = element.keyword, element.VR
    if element.VR == "SQ" or element.value is None or element.value == "":
        return None
    values = [v.strip() if vr != "PN" else v.rstrip() for v in _strings(element)]
    if values == ['""']:
        return EmptyValue(keyword)
    if all(set(value) == {"*"} for value in values):
        return None  # '*' alone matches any value, a zero-length one included (C.2.2.2.4)
    if vr == "UI":
        return (
            UidList(keyword, tuple(values)) if len(values) > 1 else SingleValue(keyword, values[0])
        )
    parts = tuple(_one(keyword, vr, value) for value in values)
    return parts[0] if len(parts) == 1 else AnyOf(keyword, parts)


def _one(keyword: str, vr: str, value: str) -> SingleValue | Wildcard | Range:
    if vr in RANGE_VRS and "-" in value:
        start, _, end = value.partition("-")
        if not start and not end:
            raise InvalidIdentifier(f"{keyword}: range {value!r} has neither start nor end")
        if end and vr in ("TM", "DT"):
            # A range ending at 1015 includes 10:15:30; '~' sorts after digits and '.',
            # so every longer value with that prefix compares below the end.
            end += "~"
        return Range(keyword, start or None, end or None)
    if vr in WILDCARD_VRS and ("*" in value or "?" in value):
        return Wildcard(keyword, value)
    return SingleValue(keyword, value)


def parse_level(identifier: Dataset, model: InformationModel) -> QueryLevel:
    """The identifier's Query/Retrieve Level, which must be one of the model's."""
    level_text = str(identifier.get("QueryRetrieveLevel", "") or "").strip()
    try:
        level = QueryLevel(level_text)
    except ValueError:
        raise InvalidIdentifier(f"QueryRetrieveLevel {level_text!r} is not a level") from None
    if level not in model.levels:
        raise InvalidIdentifier(f"level {level} is not in the {model.name} model")
    return level


def is_zero_length(element: DataElement | RawDataElement) -> bool:
    """Whether an element of a decoded data set is one not yet converted, with no value."""
    return isinstance(element, RawDataElement) and element.length == 0


def parse_identifier(identifier: Dataset, model: InformationModel) -> Query:
    """Validate a C-FIND identifier against the model's hierarchy (PS3.4 C.4.1.2.2.1)."""
    level = parse_level(identifier, model)
    constraints: list[Constraint] = []
    keys: list[str] = []
    for tag in sorted(identifier.keys()):
        element: DataElement | None = None
        if is_zero_length(identifier.get_item(tag, keep_deferred=True)):
            # A return key without a value (universal matching, C.2.2.2.3) gives only
            # its keyword, so it is not converted.
            keyword = keyword_for_tag(tag)
        else:
            element = identifier[tag]
            keyword = element.keyword
        if not keyword or keyword in ALWAYS_ALLOWED:
            continue
        keys.append(keyword)
        constraint = None if element is None else constraint_for(element)
        if constraint is not None:
            constraints.append(constraint)
    query = Query(model, level, tuple(constraints), tuple(keys), _charset(identifier))
    _check_hierarchy(query, identifier)
    return query


def _charset(identifier: Dataset) -> tuple[str, ...]:
    value = identifier.get("SpecificCharacterSet")
    if not value:
        return ()
    return tuple(value) if isinstance(value, list | tuple) else (str(value),)


def _effective_level(keyword: str, model: InformationModel) -> QueryLevel:
    """Patient attributes are study attributes in the Study Root model (PS3.4 C.6.2.1)."""
    level = level_for(keyword)
    if model is InformationModel.STUDY_ROOT and level is QueryLevel.PATIENT:
        return QueryLevel.STUDY
    return level


def _check_hierarchy(query: Query, identifier: Dataset) -> None:
    order = query.model.levels
    position = order.index(query.level)
    for upper in order[:position]:
        unique = UNIQUE_KEYS[upper]
        constraint = next((c for c in query.constraints if c.keyword == unique), None)
        if not isinstance(constraint, SingleValue | UidList):
            raise InvalidIdentifier(
                f"a {query.level} query in the {query.model.name} model needs {unique} "
                "with a single value (hierarchical query, PS3.4 C.4.1.2.2.1)"
            )
    for constraint in query.constraints:
        level = _effective_level(constraint.keyword, query.model)
        if level not in order:
            raise InvalidIdentifier(
                f"{constraint.keyword} is not a key of the {query.model.name} model"
            )
        if order.index(level) > position:
            raise InvalidIdentifier(
                f"{constraint.keyword} is a {level} key, below the {query.level} query level"
            )
        if order.index(level) < position and constraint.keyword != UNIQUE_KEYS[level]:
            raise InvalidIdentifier(
                f"{constraint.keyword} is a {level} key: above the {query.level} level only "
                f"the unique key {UNIQUE_KEYS[level]} may be matched"
            )


def _fold(text: str, fold_case: bool) -> str:
    return text.upper() if fold_case else text


def matches(constraint: Constraint, value: Any, *, fold_case: bool = False) -> bool:
    """Reference matcher: does an attribute value (None: absent) satisfy the constraint?"""
    values = (
        []
        if value in (None, "")
        else [str(v) for v in (value if isinstance(value, list | tuple) else [value])]
    )
    if isinstance(constraint, EmptyValue):
        return not values
    return any(_match_one(constraint, v, fold_case) for v in values)


def _match_one(constraint: Constraint, value: str, fold_case: bool) -> bool:
    if isinstance(constraint, AnyOf):
        return any(_match_one(part, value, fold_case) for part in constraint.parts)
    if isinstance(constraint, UidList):
        return value in constraint.uids
    if isinstance(constraint, Range):
        start, end = constraint.start, constraint.end
        return (start is None or value >= start) and (end is None or value <= end)
    if isinstance(constraint, Wildcard):
        regex = wildcard_regex(_fold(constraint.pattern, fold_case))
        return regex.fullmatch(_fold(value, fold_case)) is not None
    if isinstance(constraint, SingleValue):
        return _fold(value, fold_case) == _fold(constraint.value, fold_case)
    return False


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """DICOM wildcards as a regular expression: '*' any run, '?' one character."""
    return re.compile(fnmatch.translate(pattern.replace("[", "[[]")), re.DOTALL)
