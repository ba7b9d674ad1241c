"""Catalogue tables: patient, study, series, instance.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model's types: a migration must not change when models.py does.
DICOM_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
PATTERN_OPS = "text_pattern_ops"


def upgrade() -> None:
    create_patient()
    create_study()
    create_series()
    create_instance()


def create_patient() -> None:
    op.create_table(
        "patient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("issuer_of_patient_id", sa.String(), server_default="", nullable=False),
        sa.Column("patient_name", sa.String(), nullable=True),
        sa.Column("patient_name_folded", sa.String(), nullable=True),
        sa.Column("patient_birth_date", sa.String(), nullable=True),
        sa.Column("patient_sex", sa.String(), nullable=True),
        sa.Column("attributes", DICOM_JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_patient"),
        sa.UniqueConstraint(
            "patient_id",
            "issuer_of_patient_id",
            name="uq_patient_patient_id_issuer_of_patient_id",
        ),
    )
    for column in ("patient_id", "patient_name", "patient_name_folded"):
        op.create_index(
            f"ix_patient_{column}", "patient", [column], postgresql_ops={column: PATTERN_OPS}
        )


def create_study() -> None:
    op.create_table(
        "study",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_fk", sa.Integer(), nullable=False),
        sa.Column("study_instance_uid", sa.String(), nullable=False),
        sa.Column("study_date", sa.String(), nullable=True),
        sa.Column("study_time", sa.String(), nullable=True),
        sa.Column("accession_number", sa.String(), nullable=True),
        sa.Column("study_id", sa.String(), nullable=True),
        sa.Column("referring_physician_name", sa.String(), nullable=True),
        sa.Column("referring_physician_name_folded", sa.String(), nullable=True),
        sa.Column("study_description", sa.String(), nullable=True),
        sa.Column("modalities_in_study", sa.String(), nullable=True),
        sa.Column("sop_classes_in_study", sa.String(), nullable=True),
        sa.Column("number_of_series", sa.Integer(), server_default="0", nullable=False),
        sa.Column("number_of_instances", sa.Integer(), server_default="0", nullable=False),
        sa.Column("attributes", DICOM_JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_study"),
        sa.ForeignKeyConstraint(["patient_fk"], ["patient.id"], name="fk_study_patient_fk_patient"),
        sa.UniqueConstraint("study_instance_uid", name="uq_study_study_instance_uid"),
    )
    op.create_index("ix_study_patient_fk", "study", ["patient_fk"])
    op.create_index("ix_study_study_date", "study", ["study_date"])
    op.create_index(
        "ix_study_accession_number",
        "study",
        ["accession_number"],
        postgresql_ops={"accession_number": PATTERN_OPS},
    )


def create_series() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_fk", sa.Integer(), nullable=False),
        sa.Column("series_instance_uid", sa.String(), nullable=False),
        sa.Column("modality", sa.String(), nullable=True),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", sa.String(), nullable=True),
        sa.Column("series_date", sa.String(), nullable=True),
        sa.Column("series_time", sa.String(), nullable=True),
        sa.Column("body_part_examined", sa.String(), nullable=True),
        sa.Column("number_of_instances", sa.Integer(), server_default="0", nullable=False),
        sa.Column("attributes", DICOM_JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_series"),
        sa.ForeignKeyConstraint(["study_fk"], ["study.id"], name="fk_series_study_fk_study"),
        sa.UniqueConstraint("series_instance_uid", name="uq_series_series_instance_uid"),
    )
    op.create_index("ix_series_study_fk", "series", ["study_fk"])
    op.create_index("ix_series_modality", "series", ["modality"])


def create_instance() -> None:
    op.create_table(
        "instance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_fk", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(), nullable=False),
        sa.Column("sop_class_uid", sa.String(), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("transfer_syntax_uid", sa.String(), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=False),
        sa.Column("blob_size", sa.BigInteger(), nullable=False),
        sa.Column("attributes", DICOM_JSON, nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("source_ae_title", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_instance"),
        sa.ForeignKeyConstraint(["series_fk"], ["series.id"], name="fk_instance_series_fk_series"),
        sa.UniqueConstraint("sop_instance_uid", name="uq_instance_sop_instance_uid"),
    )
    op.create_index("ix_instance_series_fk", "instance", ["series_fk"])
    op.create_index("ix_instance_blob_sha256", "instance", ["blob_sha256"])


def downgrade() -> None:
    # Children first; dropping a table drops its indexes with it.
    for table in ("instance", "series", "study", "patient"):
        op.drop_table(table)
