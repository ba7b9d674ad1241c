"""QIDO-RS parameters as C-FIND queries: matching keys, return keys and the page window."""

import pytest
from multidict import MultiDict

from pacs.dicom.levels import QueryLevel
from pacs.dicom.matching import SingleValue, UidList, Wildcard
from pacs.web.errors import BadRequest
from pacs.web.qido_params import REQUIRED, Search, parse_search


def _search(query: str, level: QueryLevel = QueryLevel.STUDY, **relative: str) -> Search:
    pairs = [pair.partition("=") for pair in query.split("&") if pair]
    return parse_search(MultiDict((name, value) for name, _, value in pairs), level, relative)


def test_keywords_and_tags_become_constraints_and_return_keys() -> None:
    search = _search("PatientName=*SMI*&00100020=P1&limit=101&offset=5")
    assert set(search.query.constraints) == {
        Wildcard("PatientName", "*SMI*"),
        SingleValue("PatientID", "P1"),
    }
    assert set(REQUIRED[QueryLevel.STUDY]) <= set(search.query.return_keys)
    assert (search.limit, search.offset, search.fuzzy_ignored) == (101, 5, False)


def test_uid_lists_take_commas() -> None:
    search = _search("StudyInstanceUID=1.2.3,1.2.4")
    assert search.query.constraints == (UidList("StudyInstanceUID", ("1.2.3", "1.2.4")),)


def test_relative_searches_fix_the_path_uids_and_leave_out_their_attributes() -> None:
    within = _search("Modality=CT", QueryLevel.SERIES, StudyInstanceUID="1.2.3")
    assert SingleValue("StudyInstanceUID", "1.2.3") in within.query.constraints
    assert "PatientName" not in within.query.return_keys
    everywhere = _search("PatientID=P1", QueryLevel.IMAGE)
    assert {"PatientName", "Modality", "SOPInstanceUID"} <= set(everywhere.query.return_keys)


def test_includefield_adds_keys_and_all_adds_every_kept_attribute() -> None:
    some = _search("includefield=00081030,InstitutionName&includefield=Manufacturer")
    assert {"StudyDescription", "InstitutionName", "Manufacturer"} <= set(some.query.return_keys)
    every = _search("includefield=all", QueryLevel.SERIES)
    assert {"PatientSex", "StudyDescription", "BodyPartExamined"} <= set(every.query.return_keys)


@pytest.mark.parametrize(
    ("query", "level"),
    [
        ("StudyInstanceUID=1.2.4", QueryLevel.SERIES),  # fixed by the path
        ("SOPInstanceUID=1.2", QueryLevel.SERIES),  # below the level
        ("PatientID=1&PatientID=2", QueryLevel.STUDY),
        ("RequestAttributesSequence=x", QueryLevel.SERIES),
        ("includefield=NotAKeyword", QueryLevel.STUDY),
        ("offset=-3", QueryLevel.STUDY),
    ],
)
def test_what_cannot_be_searched_is_a_bad_request(query: str, level: QueryLevel) -> None:
    with pytest.raises(BadRequest):
        _search(query, level, StudyInstanceUID="1.2.3")
