"""lifecycle: account status dates, grant validity, lifecycle states, time-bound grants,
credential handover, rotation batches

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 14:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.add_column(sa.Column("status_since", sa.Date(), nullable=True))
    with op.batch_alter_table("account_grant") as batch:
        batch.add_column(sa.Column("valid_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("valid_to", sa.Date(), nullable=True))

    op.create_table(
        "lifecycle_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_lifecycle_state_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_state")),
        sa.UniqueConstraint("person_id", "scope", name="uq_lifecycle_state_person_scope"),
    )
    op.create_table(
        "lifecycle_transition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_lifecycle_transition_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_transition")),
    )
    op.create_index(
        op.f("ix_lifecycle_transition_person_id"), "lifecycle_transition", ["person_id"]
    )
    op.create_table(
        "access_grant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("target_key", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("value", sa.String(length=200), server_default="", nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=False),
        sa.Column("approved_at", TS, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_access_grant_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grant")),
    )
    op.create_index(op.f("ix_access_grant_person_id"), "access_grant", ["person_id"])
    op.create_table(
        "credential_handover",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("manager_person_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("revealed_at", TS, nullable=True),
        sa.Column("revealed_by", sa.String(length=200), nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("redeemed_at", TS, nullable=True),
        sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_credential_handover_account_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_credential_handover_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_handover")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_credential_handover_token_hash")),
    )
    op.create_index(
        op.f("ix_credential_handover_account_id"), "credential_handover", ["account_id"]
    )
    op.create_index(op.f("ix_credential_handover_person_id"), "credential_handover", ["person_id"])
    op.create_table(
        "rotation_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("filename", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rows_csv", sa.Text(), nullable=False),
        sa.Column("movers", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("approved_at", TS, nullable=True),
        sa.Column("cancelled_by", sa.String(length=200), nullable=True),
        sa.Column("cancelled_at", TS, nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("executed_at", TS, nullable=True),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("plan_id", sa.String(length=36), nullable=True),
        sa.Column("preview", JSON, nullable=True),
        sa.Column("report", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rotation_batch")),
    )


def downgrade() -> None:
    op.drop_table("rotation_batch")
    op.drop_index(op.f("ix_credential_handover_person_id"), table_name="credential_handover")
    op.drop_index(op.f("ix_credential_handover_account_id"), table_name="credential_handover")
    op.drop_table("credential_handover")
    op.drop_index(op.f("ix_access_grant_person_id"), table_name="access_grant")
    op.drop_table("access_grant")
    op.drop_index(op.f("ix_lifecycle_transition_person_id"), table_name="lifecycle_transition")
    op.drop_table("lifecycle_transition")
    op.drop_table("lifecycle_state")
    with op.batch_alter_table("account_grant") as batch:
        batch.drop_column("valid_to")
        batch.drop_column("valid_from")
    with op.batch_alter_table("account") as batch:
        batch.drop_column("status_since")
