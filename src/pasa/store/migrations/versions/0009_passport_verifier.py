"""passport verifier: presentation requests, verification records, trusted issuers, status cache

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "passport_trusted_issuer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("organisation_code", sa.String(length=10), nullable=False),
        sa.Column("vct", sa.String(length=100), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passport_trusted_issuer")),
        sa.UniqueConstraint("issuer", "vct", name="uq_passport_trusted_issuer_issuer_vct"),
    )
    op.create_table(
        "passport_verifier_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("query_ids", JSON, nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("position_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_passport_verifier_session_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["position_id"],
            ["position.id"],
            name=op.f("fk_passport_verifier_session_position_id_position"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_passport_verifier_session_person_id_person"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passport_verifier_session")),
        sa.UniqueConstraint("state", name=op.f("uq_passport_verifier_session_state")),
    )
    op.create_index(
        op.f("ix_passport_verifier_session_organisation_id"),
        "passport_verifier_session",
        ["organisation_id"],
    )
    op.create_table(
        "passport_verification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=60), nullable=True),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("relied_on", JSON, nullable=True),
        sa.Column("status_checked_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["passport_verifier_session.id"],
            name=op.f("fk_passport_verification_session_id_passport_verifier_session"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passport_verification")),
    )
    op.create_index("ix_passport_verification_session_id", "passport_verification", ["session_id"])
    op.create_table(
        "passport_status_cache",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=500), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("fetched_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passport_status_cache")),
        sa.UniqueConstraint("uri", name=op.f("uq_passport_status_cache_uri")),
    )


def downgrade() -> None:
    op.drop_table("passport_status_cache")
    op.drop_index("ix_passport_verification_session_id", table_name="passport_verification")
    op.drop_table("passport_verification")
    op.drop_index(
        op.f("ix_passport_verifier_session_organisation_id"),
        table_name="passport_verifier_session",
    )
    op.drop_table("passport_verifier_session")
    op.drop_table("passport_trusted_issuer")
