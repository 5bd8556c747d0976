"""scim: users created through SCIM, their e-mails, groups and group members

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scim_user",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=254), nullable=False),
        sa.Column("user_name_key", sa.String(length=254), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("employee_number", sa.String(length=40), nullable=True),
        sa.Column("document", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_scim_user_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_scim_user_person_id_person")
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_scim_user")),
        sa.UniqueConstraint("organisation_id", "user_name_key", name="uq_scim_user_org_user_name"),
    )
    op.create_index(
        "ix_scim_user_org_external_id",
        "scim_user",
        ["organisation_id", "external_id"],
        unique=False,
    )
    op.create_table(
        "scim_user_email",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=254), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_scim_user_email_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_user_email")),
    )
    op.create_index(
        op.f("ix_scim_user_email_person_id"), "scim_user_email", ["person_id"], unique=False
    )
    op.create_index(op.f("ix_scim_user_email_value"), "scim_user_email", ["value"], unique=False)
    op.create_table(
        "scim_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_scim_group_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_group")),
        sa.UniqueConstraint("uid", name=op.f("uq_scim_group_uid")),
    )
    op.create_index(
        op.f("ix_scim_group_organisation_id"), "scim_group", ["organisation_id"], unique=False
    )
    op.create_table(
        "scim_group_member",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["scim_group.id"], name=op.f("fk_scim_group_member_group_id_scim_group")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_scim_group_member_person_id_person")
        ),
        sa.PrimaryKeyConstraint("group_id", "person_id", name=op.f("pk_scim_group_member")),
    )
    op.create_index(
        op.f("ix_scim_group_member_person_id"), "scim_group_member", ["person_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_scim_group_member_person_id"), table_name="scim_group_member")
    op.drop_table("scim_group_member")
    op.drop_index(op.f("ix_scim_group_organisation_id"), table_name="scim_group")
    op.drop_table("scim_group")
    op.drop_index(op.f("ix_scim_user_email_value"), table_name="scim_user_email")
    op.drop_index(op.f("ix_scim_user_email_person_id"), table_name="scim_user_email")
    op.drop_table("scim_user_email")
    op.drop_index("ix_scim_user_org_external_id", table_name="scim_user")
    op.drop_table("scim_user")
