"""Turn a received instance's level attributes into the index's InstanceRecord.

The column values are read from the DICOM JSON that ingest builds for each level anyway
(values already decoded per the character set, and converted once per distinct raw
value), rather than read and decoded again through pydicom.
"""

from functools import cache
from typing import Any

from pacs.dicom.json_model import json_key, values_text
from pacs.dicom.levels import QueryLevel, level_of
from pacs.index.records import (
    InstanceRecord,
    PatientColumns,
    SeriesColumns,
    StoredBlob,
    StudyColumns,
)

LevelAttributes = dict[QueryLevel, dict[str, Any]]


@cache  # keywords of the columns: a fixed set
def _place(keyword: str) -> tuple[QueryLevel, str]:
    """The level an attribute is kept at and its JSON key there."""
    key = json_key(keyword)
    assert key is not None, keyword
    return level_of(keyword), key


class _Reader:
    """Column values of one instance, each read from the level its attribute is kept at."""

    def __init__(self, levels: LevelAttributes) -> None:
        self._levels = levels

    def _values(self, keyword: str) -> list[str] | None:
        level, key = _place(keyword)
        return values_text(self._levels[level].get(key))

    def text(self, keyword: str) -> str | None:
        """The value as DICOM writes it (several joined by backslash); None when empty."""
        values = self._values(keyword)
        if values is None:
            return None
        return "\\".join(values).strip() or None

    def number(self, keyword: str) -> int | None:
        """The first value as an integer; None when empty or not a number."""
        values = self._values(keyword)
        try:
            return int(values[0]) if values and values[0] else None
        except ValueError:
            return None


def record_for(
    levels: LevelAttributes,
    transfer_syntax_uid: str,
    blob: StoredBlob,
    source_ae_title: str,
    pixel_layout: dict[str, Any] | None = None,
) -> InstanceRecord:
    """The index record of one received instance whose header has the required UIDs."""
    read = _Reader(levels)
    return InstanceRecord(
        patient=PatientColumns(
            patient_id=read.text("PatientID") or "",
            issuer_of_patient_id=read.text("IssuerOfPatientID") or "",
            patient_name=read.text("PatientName"),
            patient_birth_date=read.text("PatientBirthDate"),
            patient_sex=read.text("PatientSex"),
        ),
        study=StudyColumns(
            study_instance_uid=read.text("StudyInstanceUID") or "",
            study_date=read.text("StudyDate"),
            study_time=read.text("StudyTime"),
            accession_number=read.text("AccessionNumber"),
            study_id=read.text("StudyID"),
            referring_physician_name=read.text("ReferringPhysicianName"),
            study_description=read.text("StudyDescription"),
        ),
        series=SeriesColumns(
            series_instance_uid=read.text("SeriesInstanceUID") or "",
            modality=read.text("Modality"),
            series_number=read.number("SeriesNumber"),
            series_description=read.text("SeriesDescription"),
            series_date=read.text("SeriesDate"),
            series_time=read.text("SeriesTime"),
            body_part_examined=read.text("BodyPartExamined"),
        ),
        sop_instance_uid=read.text("SOPInstanceUID") or "",
        sop_class_uid=read.text("SOPClassUID") or "",
        transfer_syntax_uid=transfer_syntax_uid,
        blob=blob,
        instance_number=read.number("InstanceNumber"),
        source_ae_title=source_ae_title or None,
        patient_attrs=levels[QueryLevel.PATIENT],
        study_attrs=levels[QueryLevel.STUDY],
        series_attrs=levels[QueryLevel.SERIES],
        instance_attrs=levels[QueryLevel.IMAGE],
        pixel_layout=pixel_layout,
    )
