"""Storage Commitment claims: which process reports a transaction, and until when.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("commitment_request") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(), nullable=True))
        batch.add_column(sa.Column("claimed_until", TIMESTAMP, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("commitment_request") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
