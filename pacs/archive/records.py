"""Turn a parsed header into the index's InstanceRecord: the column values of each level."""

from typing import Any

from pydicom.dataset import Dataset

from pacs.dicom.levels import QueryLevel
from pacs.index.records import (
    InstanceRecord,
    PatientColumns,
    SeriesColumns,
    StoredBlob,
    StudyColumns,
)


def _text(dataset: Dataset, keyword: str) -> str | None:
    value = dataset.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(dataset: Dataset, keyword: str) -> int | None:
    value = dataset.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def record_for(
    dataset: Dataset,
    levels: dict[QueryLevel, dict[str, Any]],
    transfer_syntax_uid: str,
    blob: StoredBlob,
    source_ae_title: str,
) -> InstanceRecord:
    """The index record of one received instance (values decoded per its character set)."""
    return InstanceRecord(
        patient=PatientColumns(
            patient_id=_text(dataset, "PatientID") or "",
            issuer_of_patient_id=_text(dataset, "IssuerOfPatientID") or "",
            patient_name=_text(dataset, "PatientName"),
            patient_birth_date=_text(dataset, "PatientBirthDate"),
            patient_sex=_text(dataset, "PatientSex"),
        ),
        study=StudyColumns(
            study_instance_uid=str(dataset.StudyInstanceUID),
            study_date=_text(dataset, "StudyDate"),
            study_time=_text(dataset, "StudyTime"),
            accession_number=_text(dataset, "AccessionNumber"),
            study_id=_text(dataset, "StudyID"),
            referring_physician_name=_text(dataset, "ReferringPhysicianName"),
            study_description=_text(dataset, "StudyDescription"),
        ),
        series=SeriesColumns(
            series_instance_uid=str(dataset.SeriesInstanceUID),
            modality=_text(dataset, "Modality"),
            series_number=_number(dataset, "SeriesNumber"),
            series_description=_text(dataset, "SeriesDescription"),
            series_date=_text(dataset, "SeriesDate"),
            series_time=_text(dataset, "SeriesTime"),
            body_part_examined=_text(dataset, "BodyPartExamined"),
        ),
        sop_instance_uid=str(dataset.SOPInstanceUID),
        sop_class_uid=str(dataset.SOPClassUID),
        transfer_syntax_uid=transfer_syntax_uid,
        blob=blob,
        instance_number=_number(dataset, "InstanceNumber"),
        source_ae_title=source_ae_title or None,
        patient_attrs=levels[QueryLevel.PATIENT],
        study_attrs=levels[QueryLevel.STUDY],
        series_attrs=levels[QueryLevel.SERIES],
        instance_attrs=levels[QueryLevel.IMAGE],
    )
