"""WADO-RS: where each instance's bulk data and frames lie, and the kept series metadata.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instance") as batch:
        batch.add_column(sa.Column("pixel_layout", sa.JSON(), nullable=True))
    op.create_table(
        "series_metadata",
        sa.Column("series_instance_uid", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("base_url", sa.String(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("series_instance_uid", name=op.f("pk_series_metadata")),
    )


def downgrade() -> None:
    op.drop_table("series_metadata")
    with op.batch_alter_table("instance") as batch:
        batch.drop_column("pixel_layout")
