"""Column values of new patient, study, series and instance rows, taken from an InstanceRecord.

Absent and zero-length values are one thing in the index: NULL (see models),
except the patient key, which stays '' so that it can be unique (see patients).
"""

from datetime import datetime
from typing import Any

from pacs.index.models import fold_person_name
from pacs.index.patients import patient_key
from pacs.index.records import InstanceRecord, PatientColumns


def _text(value: str | None) -> str | None:
    return value or None


def patient_values(record: InstanceRecord) -> dict[str, Any]:
    """Return the columns of the record's patient row."""
    patient = record.patient
    patient_id, issuer, scope = patient_key(record)
    return {
        "patient_id": patient_id,
        "issuer_of_patient_id": issuer,
        "scope_study_uid": scope,
        "patient_name": _text(patient.patient_name),
        "patient_name_folded": fold_person_name(patient.patient_name),
        "patient_birth_date": _text(patient.patient_birth_date),
        "patient_sex": _text(patient.patient_sex),
        "attributes": record.patient_attrs,
    }


def patient_columns(record: InstanceRecord) -> PatientColumns:
    """Return the patient columns of the record's new patient row as the row holds them."""
    patient = record.patient
    return PatientColumns(
        patient.patient_id,
        patient.issuer_of_patient_id,
        _text(patient.patient_name),
        _text(patient.patient_birth_date),
        _text(patient.patient_sex),
    )


def study_values(record: InstanceRecord, patient_fk: int, now: datetime) -> dict[str, Any]:
    """Return the columns of the record's study row (counts start at their defaults)."""
    study = record.study
    return {
        "patient_fk": patient_fk,
        "study_instance_uid": study.study_instance_uid,
        "study_date": _text(study.study_date),
        "study_time": _text(study.study_time),
        "accession_number": _text(study.accession_number),
        "study_id": _text(study.study_id),
        "referring_physician_name": _text(study.referring_physician_name),
        "referring_physician_name_folded": fold_person_name(study.referring_physician_name),
        "study_description": _text(study.study_description),
        "attributes": record.study_attrs,
        "created_at": now,
        "updated_at": now,
    }


def series_values(record: InstanceRecord, study_fk: int) -> dict[str, Any]:
    """Return the columns of the record's series row."""
    series = record.series
    return {
        "study_fk": study_fk,
        "series_instance_uid": series.series_instance_uid,
        "modality": _text(series.modality),
        "series_number": series.series_number,
        "series_description": _text(series.series_description),
        "series_date": _text(series.series_date),
        "series_time": _text(series.series_time),
        "body_part_examined": _text(series.body_part_examined),
        "attributes": record.series_attrs,
    }


def instance_values(record: InstanceRecord, now: datetime) -> dict[str, Any]:
    """Return the instance columns a record sets, on insert and on replace (no series_fk)."""
    return {
        "sop_instance_uid": record.sop_instance_uid,
        "sop_class_uid": record.sop_class_uid,
        "instance_number": record.instance_number,
        "transfer_syntax_uid": record.transfer_syntax_uid,
        "blob_sha256": record.blob.sha256,
        "blob_size": record.blob.size,
        "attributes": record.instance_attrs,
        "pixel_layout": record.pixel_layout,
        "received_at": now,
        "source_ae_title": _text(record.source_ae_title),
    }
