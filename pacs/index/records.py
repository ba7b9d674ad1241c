"""Values that cross the index boundary: what ingest hands in, what the index reports back."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class StoredBlob(Protocol):
    """Where an instance's file is: `pacs.store.blobstore.BlobRef` satisfies this."""

    @property
    def sha256(self) -> str: ...

    @property
    def size(self) -> int: ...


@dataclass(frozen=True, slots=True)
class PatientColumns:
    """Patient-level column values; see pacs.index.patients for the key."""

    patient_id: str = ""
    issuer_of_patient_id: str = ""
    patient_name: str | None = None
    patient_birth_date: str | None = None
    patient_sex: str | None = None


@dataclass(frozen=True, slots=True)
class StudyColumns:
    """Study-level column values."""

    study_instance_uid: str
    study_date: str | None = None
    study_time: str | None = None
    accession_number: str | None = None
    study_id: str | None = None
    referring_physician_name: str | None = None
    study_description: str | None = None


@dataclass(frozen=True, slots=True)
class SeriesColumns:
    """Series-level column values."""

    series_instance_uid: str
    modality: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    series_date: str | None = None
    series_time: str | None = None
    body_part_examined: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """Everything the index needs about one received instance whose file is stored.

    String values may be '' or None for "absent": the index stores both as NULL
    (except the patient key, which stays ''). The `*_attrs` dicts are DICOM JSON
    (PS3.18 F.2) of that level's attributes.
    """

    patient: PatientColumns
    study: StudyColumns
    series: SeriesColumns
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    blob: StoredBlob
    instance_number: int | None = None
    source_ae_title: str | None = None
    patient_attrs: dict[str, Any] = field(default_factory=dict)
    study_attrs: dict[str, Any] = field(default_factory=dict)
    series_attrs: dict[str, Any] = field(default_factory=dict)
    instance_attrs: dict[str, Any] = field(default_factory=dict)
    # Where bulk data and frames lie in the file (pacs.dicom.pixel_layout); None: not known.
    pixel_layout: dict[str, Any] | None = None


class DuplicatePolicy(StrEnum):
    """What to do when a SOP Instance UID arrives again with different bytes."""

    KEEP = "keep"
    REPLACE = "replace"
    REJECT = "reject"


class AddKind(StrEnum):
    """What adding one instance did to the index."""

    STORED = "stored"
    IDENTICAL = "identical"  # same UID, same bytes: nothing changed, whatever the policy
    KEPT_EXISTING = "kept_existing"
    REPLACED = "replaced"
    REJECTED = "rejected"
    FAILED = "failed"  # the database refused this record's values; the rest of the batch stands


@dataclass(frozen=True, slots=True)
class PatientConflict:
    """A stored instance whose patient attributes contradict its study's patient row.

    The row keeps what the first instance of the patient brought (`kept`); the
    instance's own file keeps what it was sent with (`received`).
    """

    study_instance_uid: str
    kept: PatientColumns
    received: PatientColumns


@dataclass(frozen=True, slots=True)
class AddOutcome:
    """The result for one record: `previous_sha256` is the file the index pointed to before."""

    kind: AddKind
    sop_instance_uid: str
    previous_sha256: str | None = None
    reason: str | None = None
    conflict: PatientConflict | None = None


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """An indexed instance with what retrieve and commitment need to find its file."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    instance_number: int | None
    blob_sha256: str
    blob_size: int
    study_instance_uid: str
    series_instance_uid: str
    received_at: datetime
    source_ae_title: str | None
    attributes: dict[str, Any]
    patient_id: str | None = None
