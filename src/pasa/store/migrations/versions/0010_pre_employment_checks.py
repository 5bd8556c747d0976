"""pre-employment checks: the recorded facts behind the passport's check credentials

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 22:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pre_employment_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("checked_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("superseded_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_pre_employment_check_person_id_person"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_pre_employment_check_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pre_employment_check")),
    )
    op.create_index(
        op.f("ix_pre_employment_check_person_id"), "pre_employment_check", ["person_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pre_employment_check_person_id"), table_name="pre_employment_check")
    op.drop_table("pre_employment_check")
