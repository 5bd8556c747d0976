"""access requests, approvals and the notification outbox

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "access_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("organisations", JSON, nullable=False),
        sa.Column("item_key", sa.String(length=60), nullable=False),
        sa.Column("target_key", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("value", sa.String(length=200), server_default="", nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requester_person_id", sa.Integer(), nullable=True),
        sa.Column("stages", JSON, nullable=False),
        sa.Column("sla_hours", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("stage_since", TS, nullable=True),
        sa.Column("reminded_at", TS, nullable=True),
        sa.Column("escalated_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("grant_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["access_grant.id"], name=op.f("fk_access_request_grant_id_access_grant")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_access_request_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_request")),
    )
    for column in ("person_id", "target_key", "requested_by", "state"):
        op.create_index(op.f(f"ix_access_request_{column}"), "access_request", [column])
    op.create_table(
        "access_request_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("by_request", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("decided_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["access_request.id"],
            name=op.f("fk_access_request_decision_request_id_access_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_request_decision")),
    )
    op.create_index(
        op.f("ix_access_request_decision_request_id"), "access_request_decision", ["request_id"]
    )
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["access_request.id"],
            name=op.f("fk_notification_request_id_access_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
    )
    op.create_index(op.f("ix_notification_request_id"), "notification", ["request_id"])
    op.create_index(op.f("ix_notification_status"), "notification", ["status"])


def downgrade() -> None:
    op.drop_table("notification")
    op.drop_table("access_request_decision")
    op.drop_table("access_request")
