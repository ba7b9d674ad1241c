"""Tables of the catalogue: patient -> study -> series -> instance (SQLAlchemy 2 typed models).

Empty values: an optional column holds NULL when the attribute is absent or
zero-length, never '', so PS3.4 C.2.2.2.4 empty-value matching is `IS NULL`.
The one exception is the patient key (patient_id, issuer_of_patient_id,
scope_study_uid): all are NOT NULL and hold '' when absent, because NULLs never
collide in a unique constraint and two rows for one patient would appear.

Each level keeps the attributes matched often as columns and the whole level's
attributes as DICOM JSON (PS3.18 F.2) in `attributes` (JSONB on PostgreSQL,
JSON text on SQLite) for any other key.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# DICOM JSON of one level. JSONB on PostgreSQL so that it can be indexed and
# queried with containment later; keys (tags) come back in tag order either way.
DICOM_JSON = JSON().with_variant(JSONB(), "postgresql")
TIMESTAMP = DateTime(timezone=True)

# PostgreSQL only uses a b-tree for `LIKE 'abc%'` under the C collation, unless
# the index uses text_pattern_ops; these keys are matched with wildcards (PS3.4
# C.2.2.2.4) but never with ranges, so the pattern operator class suits them.
PATTERN_OPS = "text_pattern_ops"


# PostgreSQL only, and only where the pg_trgm extension is (migration 0004): a GIN
# index of trigrams of patient_name_folded, which serves `*SMI*`-style searches.
# Not declared on the model, since whether it exists depends on the server.
TRIGRAM_INDEX = "ix_patient_patient_name_folded_trigrams"


def fold_person_name(value: str | None) -> str | None:
    """Return the form kept in `*_folded` columns for case-insensitive PN matching."""
    return value.upper() if value else None


class Base(DeclarativeBase):
    """Declarative base with constraint names that are the same on every database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Patient(Base):
    """A patient, identified by Patient ID within its issuer.

    Patient ID is Type 2: an instance may come without one. Such an instance says
    nothing about who else it shares a patient with, so its patient is confined to
    its study: `scope_study_uid` holds that study's UID (and '' for every patient
    with a Patient ID), and instances of different people never share a row.
    """

    __tablename__ = "patient"
    __table_args__ = (
        UniqueConstraint("patient_id", "issuer_of_patient_id", "scope_study_uid"),
        # The unique constraint leads with patient_id, but with default operators;
        # this one serves wildcard matching on PostgreSQL.
        Index("ix_patient_patient_id", "patient_id", postgresql_ops={"patient_id": PATTERN_OPS}),
        Index(
            "ix_patient_patient_name", "patient_name", postgresql_ops={"patient_name": PATTERN_OPS}
        ),
        Index(
            "ix_patient_patient_name_folded",
            "patient_name_folded",
            postgresql_ops={"patient_name_folded": PATTERN_OPS},
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String)
    issuer_of_patient_id: Mapped[str] = mapped_column(String, server_default="")
    scope_study_uid: Mapped[str] = mapped_column(String, server_default="")
    patient_name: Mapped[str | None] = mapped_column(String)
    patient_name_folded: Mapped[str | None] = mapped_column(String)
    patient_birth_date: Mapped[str | None] = mapped_column(String)
    patient_sex: Mapped[str | None] = mapped_column(String)
    attributes: Mapped[dict[str, Any]] = mapped_column(DICOM_JSON)


class Study(Base):
    """A study; modalities, SOP classes and counts are maintained as instances arrive."""

    __tablename__ = "study"
    __table_args__ = (
        UniqueConstraint("study_instance_uid"),
        Index("ix_study_patient_fk", "patient_fk"),
        Index("ix_study_study_date", "study_date"),
        Index(
            "ix_study_accession_number",
            "accession_number",
            postgresql_ops={"accession_number": PATTERN_OPS},
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_fk: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    study_instance_uid: Mapped[str] = mapped_column(String)
    study_date: Mapped[str | None] = mapped_column(String)
    study_time: Mapped[str | None] = mapped_column(String)
    accession_number: Mapped[str | None] = mapped_column(String)
    study_id: Mapped[str | None] = mapped_column(String)
    referring_physician_name: Mapped[str | None] = mapped_column(String)
    referring_physician_name_folded: Mapped[str | None] = mapped_column(String)
    study_description: Mapped[str | None] = mapped_column(String)
    # Backslash-joined like a multi-valued CS/UI element, sorted, NULL while empty.
    modalities_in_study: Mapped[str | None] = mapped_column(String)
    sop_classes_in_study: Mapped[str | None] = mapped_column(String)
    number_of_series: Mapped[int] = mapped_column(Integer, server_default="0")
    number_of_instances: Mapped[int] = mapped_column(Integer, server_default="0")
    attributes: Mapped[dict[str, Any]] = mapped_column(DICOM_JSON)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    updated_at: Mapped[datetime] = mapped_column(TIMESTAMP)


class Series(Base):
    """A series within a study."""

    __tablename__ = "series"
    __table_args__ = (
        UniqueConstraint("series_instance_uid"),
        Index("ix_series_study_fk", "study_fk"),
        Index("ix_series_modality", "modality"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_fk: Mapped[int] = mapped_column(ForeignKey("study.id"))
    series_instance_uid: Mapped[str] = mapped_column(String)
    modality: Mapped[str | None] = mapped_column(String)
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str | None] = mapped_column(String)
    series_date: Mapped[str | None] = mapped_column(String)
    series_time: Mapped[str | None] = mapped_column(String)
    body_part_examined: Mapped[str | None] = mapped_column(String)
    number_of_instances: Mapped[int] = mapped_column(Integer, server_default="0")
    attributes: Mapped[dict[str, Any]] = mapped_column(DICOM_JSON)


class Instance(Base):
    """An instance and the one stored file that currently holds it."""

    __tablename__ = "instance"
    __table_args__ = (
        UniqueConstraint("sop_instance_uid"),
        Index("ix_instance_series_fk", "series_fk"),
        Index("ix_instance_blob_sha256", "blob_sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_fk: Mapped[int] = mapped_column(ForeignKey("series.id"))
    sop_instance_uid: Mapped[str] = mapped_column(String)
    sop_class_uid: Mapped[str] = mapped_column(String)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    transfer_syntax_uid: Mapped[str] = mapped_column(String)
    blob_sha256: Mapped[str] = mapped_column(String(64))
    blob_size: Mapped[int] = mapped_column(BigInteger)
    attributes: Mapped[dict[str, Any]] = mapped_column(DICOM_JSON)
    received_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    source_ae_title: Mapped[str | None] = mapped_column(String)
    # Where bulk data and frames lie in the file (pacs.dicom.pixel_layout), noted at ingest
    # or on the first frame request; NULL while unknown. Plain JSON: never queried into.
    pixel_layout: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SeriesMetadata(Base):
    """A series' WADO-RS metadata response, gzipped, built once and kept (PS3.18 10.4.1.2).

    `fingerprint` is a digest of the series' (SOP Instance UID, file) pairs when it was
    built, and `base_url` the URL prefix its BulkDataURIs carry: a request whose series
    no longer matches (an instance added, replaced or deleted) or whose base differs
    builds it again.
    """

    __tablename__ = "series_metadata"

    series_instance_uid: Mapped[str] = mapped_column(String, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    base_url: Mapped[str] = mapped_column(String)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    built_at: Mapped[datetime] = mapped_column(TIMESTAMP)


class CommitmentRequest(Base):
    """A Storage Commitment transaction (PS3.4 J.3): pending until its report is delivered.

    `result` is decided once and kept, so a report sent again after a restart
    says what the first attempt said.
    """

    __tablename__ = "commitment_request"
    __table_args__ = (
        UniqueConstraint("transaction_uid"),
        Index("ix_commitment_request_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_uid: Mapped[str] = mapped_column(String)
    requester_ae_title: Mapped[str] = mapped_column(String)
    references: Mapped[list[Any]] = mapped_column(JSON)  # [[sop_class_uid, sop_instance_uid]]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String)  # pending | reported | undeliverable
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    deadline: Mapped[datetime] = mapped_column(TIMESTAMP)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    reported_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)


class DeidentifiedUid(Base):
    """A UID as de-identification under a profile (`scope`) replaced it, to answer
    "which original is this?" (the replacement is a keyed hash: the row is a record)."""

    __tablename__ = "deidentified_uid"
    __table_args__ = (
        Index("ix_deidentified_uid_scope_replacement_uid", "scope", "replacement_uid"),
    )

    scope: Mapped[str] = mapped_column(String, primary_key=True)
    original_uid: Mapped[str] = mapped_column(String, primary_key=True)
    replacement_uid: Mapped[str] = mapped_column(String)


class DeidentifiedPatient(Base):
    """A patient's pseudonym and date shift under a profile (`scope`)."""

    __tablename__ = "deidentified_patient"
    __table_args__ = (Index("ix_deidentified_patient_scope_pseudonym", "scope", "pseudonym"),)

    scope: Mapped[str] = mapped_column(String, primary_key=True)
    issuer_of_patient_id: Mapped[str] = mapped_column(String, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String)
    shift_days: Mapped[int] = mapped_column(Integer)
