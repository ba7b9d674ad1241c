"""C-MOVE / C-GET identifiers: which entities a retrieve names (PS3.4 C.4.2.2.1, C.4.3.2.1).

A retrieve is hierarchical: the identifier names entities of its level by
their unique key (a list of UIDs allowed below the patient level), and may
narrow them with the unique keys of the levels above.
"""

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from pacs.dicom.levels import QueryLevel
from pacs.dicom.matching import UNIQUE_KEYS, InformationModel, parse_level
from pacs.errors import InvalidIdentifier

# C-MOVE and C-GET SOP Class UID -> the information model whose levels they use.
RETRIEVE_MODELS = {
    "1.2.840.10008.5.1.4.1.2.1.2": InformationModel.PATIENT_ROOT,
    "1.2.840.10008.5.1.4.1.2.2.2": InformationModel.STUDY_ROOT,
    "1.2.840.10008.5.1.4.1.2.3.2": InformationModel.PATIENT_STUDY_ONLY,
    "1.2.840.10008.5.1.4.1.2.1.3": InformationModel.PATIENT_ROOT,
    "1.2.840.10008.5.1.4.1.2.2.3": InformationModel.STUDY_ROOT,
    "1.2.840.10008.5.1.4.1.2.3.3": InformationModel.PATIENT_STUDY_ONLY,
}
MOVE_SOP_CLASSES = tuple(uid for uid in RETRIEVE_MODELS if uid.endswith(".2"))
GET_SOP_CLASSES = tuple(uid for uid in RETRIEVE_MODELS if uid.endswith(".3"))


@dataclass(frozen=True, slots=True)
class Selection:
    """The instances a retrieve names: every given key narrows the set (empty: not given)."""

    level: QueryLevel
    patient_ids: tuple[str, ...] = ()
    study_uids: tuple[str, ...] = ()
    series_uids: tuple[str, ...] = ()
    sop_uids: tuple[str, ...] = ()


def _values(identifier: Dataset, keyword: str) -> tuple[str, ...]:
    value = identifier.get(keyword)
    if value is None or value == "":
        return ()
    values = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    return tuple(str(v).strip() for v in values if str(v).strip())


def parse_selection(identifier: Dataset, sop_class_uid: str) -> Selection:
    """Validate a retrieve identifier; raise InvalidIdentifier saying what is wrong."""
    model = RETRIEVE_MODELS[sop_class_uid]
    level = parse_level(identifier, model)
    keys = {lvl: _values(identifier, UNIQUE_KEYS[lvl]) for lvl in model.levels}
    own = UNIQUE_KEYS[level]
    if not keys[level]:
        raise InvalidIdentifier(f"a {level} retrieve needs {own}")
    if level is QueryLevel.PATIENT and len(keys[level]) > 1:
        raise InvalidIdentifier("a PATIENT retrieve names one PatientID")
    return Selection(
        level=level,
        patient_ids=keys.get(QueryLevel.PATIENT, ()),
        study_uids=keys.get(QueryLevel.STUDY, ()),
        series_uids=keys.get(QueryLevel.SERIES, ()),
        sop_uids=keys.get(QueryLevel.IMAGE, ()),
    )
