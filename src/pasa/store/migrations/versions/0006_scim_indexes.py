"""scim indexes: expression indexes for the SCIM filters userName, emails and employeeNumber eq

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_person_scim_user_name",
        "person",
        [sa.text("lower(coalesce(email, uid))")],
        unique=False,
    )
    op.create_index(
        "ix_assignment_org_employee_number_lower",
        "assignment",
        ["organisation_id", sa.text("lower(employee_number)")],
        unique=False,
    )
    op.create_index(
        "ix_scim_user_org_employee_number_lower",
        "scim_user",
        ["organisation_id", sa.text("lower(employee_number)")],
        unique=False,
    )
    op.create_index(
        "ix_scim_user_email_value_lower",
        "scim_user_email",
        [sa.text("lower(value)")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_scim_user_email_value_lower", table_name="scim_user_email")
    op.drop_index("ix_scim_user_org_employee_number_lower", table_name="scim_user")
    op.drop_index("ix_assignment_org_employee_number_lower", table_name="assignment")
    op.drop_index("ix_person_scim_user_name", table_name="person")
