"""De-identification mappings: the UIDs and patients each profile replaced, and by what.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deidentified_uid",
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("original_uid", sa.String(), nullable=False),
        sa.Column("replacement_uid", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "original_uid", name=op.f("pk_deidentified_uid")),
    )
    op.create_index(
        "ix_deidentified_uid_scope_replacement_uid",
        "deidentified_uid",
        ["scope", "replacement_uid"],
    )
    op.create_table(
        "deidentified_patient",
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("issuer_of_patient_id", sa.String(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("pseudonym", sa.String(), nullable=False),
        sa.Column("shift_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "scope", "issuer_of_patient_id", "patient_id", name=op.f("pk_deidentified_patient")
        ),
    )
    op.create_index(
        "ix_deidentified_patient_scope_pseudonym", "deidentified_patient", ["scope", "pseudonym"]
    )


def downgrade() -> None:
    op.drop_index("ix_deidentified_patient_scope_pseudonym", table_name="deidentified_patient")
    op.drop_table("deidentified_patient")
    op.drop_index("ix_deidentified_uid_scope_replacement_uid", table_name="deidentified_uid")
    op.drop_table("deidentified_uid")
