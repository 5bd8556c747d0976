"""passport: issuer keys, status lists, issued credentials, offers, nonces and access tokens

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 20:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "passport_issuer_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("public_jwk", JSON, nullable=False),
        sa.Column("private_key_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("retired_at", TS, nullable=True),
        sa.Column("signed_until", TS, nullable=True),
        sa.Column("publish_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passport_issuer_key")),
        sa.UniqueConstraint("kid", name=op.f("uq_passport_issuer_key_kid")),
    )
    op.create_table(
        "passport_status_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("bits", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("signed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passport_status_list")),
        sa.UniqueConstraint("uid", name=op.f("uq_passport_status_list_uid")),
    )
    op.create_table(
        "passport_credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=True),
        sa.Column("vct", sa.String(length=100), nullable=False),
        sa.Column("status_list_id", sa.Integer(), nullable=False),
        sa.Column("status_idx", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("state_reason", sa.String(length=60), nullable=True),
        sa.Column("state_changed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignment.id"],
            name=op.f("fk_passport_credential_assignment_id_assignment"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_passport_credential_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["status_list_id"],
            ["passport_status_list.id"],
            name=op.f("fk_passport_credential_status_list_id_passport_status_list"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passport_credential")),
        sa.UniqueConstraint("uid", name=op.f("uq_passport_credential_uid")),
        sa.UniqueConstraint("status_list_id", "status_idx", name="uq_passport_credential_status"),
    )
    op.create_index(op.f("ix_passport_credential_person_id"), "passport_credential", ["person_id"])
    op.create_index(
        op.f("ix_passport_credential_assignment_id"), "passport_credential", ["assignment_id"]
    )
    op.create_table(
        "passport_offer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("code_encrypted", sa.Text(), nullable=False),
        sa.Column("tx_code_hash", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("configuration_ids", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_passport_offer_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passport_offer")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_passport_offer_code_hash")),
        sa.UniqueConstraint("uid", name=op.f("uq_passport_offer_uid")),
    )
    op.create_index(op.f("ix_passport_offer_person_id"), "passport_offer", ["person_id"])
    op.create_table(
        "passport_nonce",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passport_nonce")),
        sa.UniqueConstraint("nonce_hash", name=op.f("uq_passport_nonce_nonce_hash")),
    )
    op.create_table(
        "passport_access_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["passport_offer.id"],
            name=op.f("fk_passport_access_token_offer_id_passport_offer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passport_access_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_passport_access_token_token_hash")),
    )
    op.create_index(
        op.f("ix_passport_access_token_offer_id"), "passport_access_token", ["offer_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_passport_access_token_offer_id"), table_name="passport_access_token")
    op.drop_table("passport_access_token")
    op.drop_table("passport_nonce")
    op.drop_index(op.f("ix_passport_offer_person_id"), table_name="passport_offer")
    op.drop_table("passport_offer")
    op.drop_index(op.f("ix_passport_credential_assignment_id"), table_name="passport_credential")
    op.drop_index(op.f("ix_passport_credential_person_id"), table_name="passport_credential")
    op.drop_table("passport_credential")
    op.drop_table("passport_status_list")
    op.drop_table("passport_issuer_key")
