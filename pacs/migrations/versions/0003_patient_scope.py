"""A patient without Patient ID is confined to its study.

Patient ID is Type 2, and instances without one used to share a single patient row,
which kept the demographics of the first of them: other people's studies answered with
that person's name. The patient key gains `scope_study_uid`: the Study Instance UID for
a patient without Patient ID, '' otherwise. Upgrading gives every study of such a merged
row a patient of its own, carrying the attributes the merged row held (the index does not
have the others; re-indexing from the files restores them).

Downgrading merges them again, as the older schema can only hold one such patient per
issuer.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = "uq_patient_patient_id_issuer_of_patient_id"
NEW_KEY = "uq_patient_patient_id_issuer_of_patient_id_scope_study_uid"

SPLIT = (
    # One patient per study of a patient without Patient ID, copied from the shared row.
    """
    INSERT INTO patient (patient_id, issuer_of_patient_id, scope_study_uid, patient_name,
                         patient_name_folded, patient_birth_date, patient_sex, attributes)
    SELECT p.patient_id, p.issuer_of_patient_id, s.study_instance_uid, p.patient_name,
           p.patient_name_folded, p.patient_birth_date, p.patient_sex, p.attributes
    FROM study s JOIN patient p ON s.patient_fk = p.id
    WHERE p.patient_id = '' AND p.scope_study_uid = ''
    """,
    """
    UPDATE study SET patient_fk = (
        SELECT n.id FROM patient n
        WHERE n.patient_id = '' AND n.scope_study_uid = study.study_instance_uid
    )
    WHERE patient_fk IN (SELECT id FROM patient WHERE patient_id = '' AND scope_study_uid = '')
    """,
    "DELETE FROM patient WHERE patient_id = '' AND scope_study_uid = ''",
)

MERGE = (
    """
    UPDATE study SET patient_fk = (
        SELECT MIN(p2.id) FROM patient p1 JOIN patient p2
            ON p2.patient_id = p1.patient_id
            AND p2.issuer_of_patient_id = p1.issuer_of_patient_id
        WHERE p1.id = study.patient_fk
    )
    WHERE patient_fk IN (SELECT id FROM patient WHERE scope_study_uid <> '')
    """,
    """
    DELETE FROM patient
    WHERE scope_study_uid <> '' AND id NOT IN (SELECT patient_fk FROM study)
    """,
    "UPDATE patient SET scope_study_uid = ''",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_patient_on_sqlite(scoped=True)
    else:
        op.add_column(
            "patient",
            sa.Column("scope_study_uid", sa.String(), server_default="", nullable=False),
        )
        op.drop_constraint(OLD_KEY, "patient", type_="unique")
        op.create_unique_constraint(
            NEW_KEY, "patient", ["patient_id", "issuer_of_patient_id", "scope_study_uid"]
        )
    for statement in SPLIT:
        op.execute(statement)


def downgrade() -> None:
    for statement in MERGE:
        op.execute(statement)
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_patient_on_sqlite(scoped=False)
    else:
        op.drop_constraint(NEW_KEY, "patient", type_="unique")
        op.create_unique_constraint(OLD_KEY, "patient", ["patient_id", "issuer_of_patient_id"])
        op.drop_column("patient", "scope_study_uid")


def _rebuild_patient_on_sqlite(*, scoped: bool) -> None:
    """Give SQLite's patient table the other key: its key constraint cannot be altered.

    The table is copied aside, dropped and created again under its own name, then
    refilled: the studies' foreign keys name the table, and with their checks
    deferred, the rows inserted again satisfy them before the transaction commits.
    (Renaming a new table into place, as Alembic's batch mode does, would leave
    them counted as violated.)
    """
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute("CREATE TABLE patient_copy AS SELECT * FROM patient")
    op.drop_table("patient")
    key = ["patient_id", "issuer_of_patient_id"]
    scope = []
    if scoped:
        key.append("scope_study_uid")
        scope.append(sa.Column("scope_study_uid", sa.String(), server_default="", nullable=False))
    op.create_table(
        "patient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("issuer_of_patient_id", sa.String(), server_default="", nullable=False),
        *scope,
        sa.Column("patient_name", sa.String(), nullable=True),
        sa.Column("patient_name_folded", sa.String(), nullable=True),
        sa.Column("patient_birth_date", sa.String(), nullable=True),
        sa.Column("patient_sex", sa.String(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_patient"),
        sa.UniqueConstraint(*key, name=NEW_KEY if scoped else OLD_KEY),
    )
    for column in ("patient_id", "patient_name", "patient_name_folded"):
        op.create_index(f"ix_patient_{column}", "patient", [column])
    # The columns both tables have: a new scope starts as '', an old one is dropped.
    columns = ", ".join(
        [
            "id",
            "patient_id",
            "issuer_of_patient_id",
            "patient_name",
            "patient_name_folded",
            "patient_birth_date",
            "patient_sex",
            "attributes",
        ]
    )
    op.execute(f"INSERT INTO patient ({columns}) SELECT {columns} FROM patient_copy")
    op.drop_table("patient_copy")
