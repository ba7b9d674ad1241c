"""Build a C-FIND response identifier, as DICOM JSON, from index attributes (PS3.4 C.4.1.1.3.2).

A response carries the keys the request asked for and only those, with the
values the index holds (zero length where it holds none), plus the query level,
the Retrieve AE Title and, when a value needs it, the Specific Character Set.
"""

from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.tag import Tag

from pacs.dicom.json_encoding import UTF8
from pacs.dicom.matching import Query


def _tag(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return f"{tag:08X}"


def _has_non_ascii(attributes: dict[str, Any]) -> bool:
    return any(not text.isascii() for text in _texts(attributes))


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def response_json(
    query: Query, attributes: dict[str, Any], retrieve_ae_title: str
) -> dict[str, Any]:
    """The identifier of one Pending response as DICOM JSON keyed by tag; `attributes` is the
    index's DICOM JSON of the match."""
    wanted: dict[str, Any] = {}
    for keyword in query.return_keys:
        key = _tag(keyword)
        wanted[key] = attributes.get(key) or {"vr": dictionary_VR(Tag(key))}
    charset = None
    if _has_non_ascii(wanted):
        charset = UTF8
    elif query.character_set:
        charset = "\\".join(query.character_set)
    if charset:
        wanted["00080005"] = {"vr": "CS", "Value": charset.split("\\")}
    wanted["00080052"] = {"vr": "CS", "Value": [str(query.level)]}
    wanted["00080054"] = {"vr": "AE", "Value": [retrieve_ae_title]}
    return wanted
