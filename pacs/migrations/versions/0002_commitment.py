"""Storage Commitment transactions, kept until their report is delivered.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "commitment_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction_uid", sa.String(), nullable=False),
        sa.Column("requester_ae_title", sa.String(), nullable=False),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("deadline", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("reported_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commitment_request")),
        sa.UniqueConstraint("transaction_uid", name=op.f("uq_commitment_request_transaction_uid")),
    )
    op.create_index(
        op.f("ix_commitment_request_state"), "commitment_request", ["state"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_commitment_request_state"), table_name="commitment_request")
    op.drop_table("commitment_request")
