"""Patient names searched with a leading wildcard use a trigram index on PostgreSQL.

A C-FIND for `*SMI*` matches `patient_name_folded LIKE '%SMI%'`, which no b-tree
serves: without this index PostgreSQL reads every patient row. A GIN index of
pg_trgm trigrams serves LIKE with wildcards anywhere. pg_trgm ships with
PostgreSQL's contrib modules and is a trusted extension (PostgreSQL 13 and later),
so the database's owner may create it; where it is not installed and cannot be
created, the index is left out and such searches keep reading the table (the
migration says so in a warning, and succeeds). SQLite has no such index: its
scan of the patient table is what a leading wildcard costs there.

Downgrading drops the index and leaves the extension, which other schemas may use.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 00:00:00
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_patient_patient_name_folded_trigrams"  # pacs.index.models.TRIGRAM_INDEX
LOG = logging.getLogger("alembic.runtime.migration")


def _trigrams_available(connection: sa.Connection) -> bool:
    """Whether pg_trgm is installed in this database, or can be (tried in a savepoint)."""
    installed = "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"
    if connection.exec_driver_sql(installed).first() is not None:
        return True
    offered = "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
    if connection.exec_driver_sql(offered).first() is None:
        return False
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        LOG.warning("pg_trgm cannot be created here (%s)", exc.orig)
        return False
    savepoint.commit()
    return True


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    if not _trigrams_available(connection):
        LOG.warning("no %s: leading-wildcard name searches will read every patient", INDEX)
        return
    op.create_index(
        INDEX,
        "patient",
        ["patient_name_folded"],
        postgresql_using="gin",
        postgresql_ops={"patient_name_folded": "gin_trgm_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
