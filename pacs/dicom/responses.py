"""Build a C-FIND response identifier, as DICOM JSON, from index attributes (PS3.4 C.4.1.1.3.2).

A response carries the keys the request asked for and only those, with the
values the index holds (zero length where it holds none), plus the query level,
the Retrieve AE Title and, when a value needs it, the Specific Character Set.
"""

from functools import lru_cache
from typing import Any

from pydicom.datadict import dictionary_VR

from pacs.dicom import json_model
from pacs.dicom.json_encoding import UTF8
from pacs.dicom.json_model import json_key
from pacs.dicom.matching import Query


@lru_cache(maxsize=1024)  # peers ask for a few sets of keys, but any peer may send any
def _template(return_keys: tuple[str, ...]) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Each return key's tag and its zero-length element, worked out once per set of keys."""
    template = []
    for keyword in return_keys:
        key = json_key(keyword)
        assert key is not None, keyword
        template.append((key, {"vr": dictionary_VR(keyword)}))
    return tuple(template)


def _has_non_ascii(attributes: dict[str, Any]) -> bool:
    # One C pass over every string: json_model writes text as it is, never escaped.
    return not json_model.dumps(attributes).isascii()


def response_json(
    query: Query, attributes: dict[str, Any], retrieve_ae_title: str
) -> dict[str, Any]:
    """The identifier of one Pending response as DICOM JSON keyed by tag; `attributes` is the
    index's DICOM JSON of the match."""
    wanted: dict[str, Any] = {}
    for key, empty in _template(query.return_keys):
        # The empty element is shared by every response: nobody writes to a response.
        wanted[key] = attributes.get(key) or empty
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
