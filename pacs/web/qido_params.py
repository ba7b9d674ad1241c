"""QIDO-RS query parameters (PS3.18 8.3.4) as a C-FIND `Query` and a page of its matches.

Matching keys are attributes by keyword or tag (`PatientName=*x*`, `00100020=P1`), with
C-FIND's matching rules (pacs.dicom.matching): wildcards, ranges, UID lists (a comma or
backslash between UIDs). QIDO is relational within the study root: a series search may
match study and patient attributes, but not attributes below its level. The keys
returned are the ones PS3.18 10.6.3.3 requires at the level (and above it, when the
search is not relative to a study or series), the matching keys and `includefield`.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from multidict import MultiMapping
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement

from pacs.dicom.levels import (
    PATIENT_KEYWORDS,
    SERIES_KEYWORDS,
    STUDY_KEYWORDS,
    QueryLevel,
    level_of,
)
from pacs.dicom.matching import (
    COMPUTED,
    Constraint,
    InformationModel,
    Query,
    SingleValue,
    constraint_for,
)
from pacs.web.errors import BadRequest

# PS3.18 Tables 10.6.3-3, -4 and -5 (InstanceAvailability and RetrieveURL are added to
# every result; TimezoneOffsetFromUTC is returned when a study holds it).
REQUIRED: Mapping[QueryLevel, tuple[str, ...]] = {
    QueryLevel.STUDY: (
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ModalitiesInStudy",
        "ReferringPhysicianName",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyID",
        "StudyDescription",  # not required; every viewer's study list shows it
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    QueryLevel.SERIES: (
        "Modality",
        "SeriesDescription",
        "SeriesInstanceUID",
        "SeriesNumber",
        "NumberOfSeriesRelatedInstances",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "RequestAttributesSequence",
    ),
    QueryLevel.IMAGE: (
        "SOPClassUID",
        "SOPInstanceUID",
        "InstanceNumber",
        "Rows",
        "Columns",
        "BitsAllocated",
        "NumberOfFrames",
    ),
}
ORDER = (QueryLevel.STUDY, QueryLevel.SERIES, QueryLevel.IMAGE)
# The query parameters that are not attributes (PS3.18 8.3.4.1 and 8.3.4.2).
CONTROL = frozenset({"limit", "offset", "includefield", "fuzzymatching"})


@dataclass(frozen=True, slots=True)
class Search:
    """One QIDO-RS request: the C-FIND query, the window of results, and what to warn about."""

    query: Query
    offset: int = 0
    limit: int | None = None
    fuzzy_ignored: bool = False


def _effective(keyword: str) -> QueryLevel:
    """The level a key is matched at in the study root: patient keys are study keys."""
    level = COMPUTED.get(keyword) or level_of(keyword)
    return QueryLevel.STUDY if level is QueryLevel.PATIENT else level


def keyword_of(name: str) -> str:
    """The keyword a parameter names, by keyword or as eight hex digits; BadRequest if none."""
    if "." in name:
        raise BadRequest(f"{name}: searching inside sequences is not supported")
    keyword = name
    if len(name) == 8 and all(c in "0123456789abcdefABCDEF" for c in name):
        keyword = keyword_for_tag(int(name, 16))
    if not keyword or tag_for_keyword(keyword) is None:
        raise BadRequest(f"{name}: not a DICOM attribute keyword or tag")
    return keyword


def _number(name: str, values: Sequence[str]) -> int:
    if len(values) != 1 or not values[0].isdigit():
        raise BadRequest(f"{name}: must be one non-negative integer, got {', '.join(values)!r}")
    return int(values[0])


def _included(values: Iterable[str], level: QueryLevel) -> set[str]:
    keys: set[str] = set()
    for value in values:
        for name in filter(None, (part.strip() for part in value.split(","))):
            if name == "all":
                keys |= _all_keys(level)
            else:
                keys.add(keyword_of(name))
    return keys


def _all_keys(level: QueryLevel) -> set[str]:
    """`includefield=all`: every attribute the index keeps by name at the level and above it
    (an instance's other attributes are in its metadata, WADO-RS)."""
    keys = set(PATIENT_KEYWORDS | STUDY_KEYWORDS)
    keys |= {k for k, at in COMPUTED.items() if at is not QueryLevel.SERIES}
    if level is not QueryLevel.STUDY:
        keys |= SERIES_KEYWORDS | {"NumberOfSeriesRelatedInstances"}
    for upper in ORDER[: ORDER.index(level) + 1]:
        keys |= set(REQUIRED[upper])
    return keys


def _constraint(keyword: str, values: Sequence[str], level: QueryLevel) -> Constraint | None:
    """The constraint a matching key asks for; BadRequest when the level cannot match it."""
    if ORDER.index(_effective(keyword)) > ORDER.index(level):
        raise BadRequest(f"{keyword} is not an attribute of a {level} or above it")
    if len(values) != 1:
        raise BadRequest(f"{keyword}: given {len(values)} times; give one value")
    vr = dictionary_VR(keyword)
    if vr == "SQ":
        raise BadRequest(f"{keyword}: matching on sequences is not supported")
    value = values[0]
    if vr == "UI":
        value = value.replace(",", "\\")
    return constraint_for(DataElement(keyword, vr, value))


def parse_search(
    params: MultiMapping[str], level: QueryLevel, relative: Mapping[str, str]
) -> Search:
    """The search `params` ask for at `level`; `relative`: the UIDs the path fixes.

    BadRequest names the parameter that cannot be used.
    """
    constraints: list[Constraint] = [SingleValue(k, uid) for k, uid in relative.items()]
    keys = set(REQUIRED[level]) | set(relative)
    below = [lv for lv in ORDER if ORDER.index(lv) <= ORDER.index(level)]
    fixed = {QueryLevel.STUDY: "StudyInstanceUID", QueryLevel.SERIES: "SeriesInstanceUID"}
    for upper in below[:-1]:
        if fixed[upper] not in relative:
            keys |= set(REQUIRED[upper])
    for name in params:
        if name in CONTROL:
            continue
        keyword = keyword_of(name)
        if keyword in relative:
            raise BadRequest(f"{name}: already given by the path")
        keys.add(keyword)
        constraint = _constraint(keyword, params.getall(name), level)
        if constraint is not None:
            constraints.append(constraint)
    keys |= _included(params.getall("includefield", []), level)
    fuzzy = params.getall("fuzzymatching", [])
    if any(value not in ("true", "false") for value in fuzzy):
        raise BadRequest("fuzzymatching: must be true or false")
    limit = _number("limit", params.getall("limit")) if "limit" in params else None
    offset = _number("offset", params.getall("offset")) if "offset" in params else 0
    return_keys = tuple(sorted(keys, key=lambda k: tag_for_keyword(k) or 0))
    query = Query(InformationModel.STUDY_ROOT, level, tuple(constraints), return_keys)
    return Search(query, offset, limit, fuzzy_ignored="true" in fuzzy)
