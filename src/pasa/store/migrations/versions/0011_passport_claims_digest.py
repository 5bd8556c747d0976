"""passport credentials remember a digest of the claims they attest (re-issue on change)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 23:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("passport_credential") as batch:
        batch.add_column(sa.Column("claims_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("passport_credential") as batch:
        batch.drop_column("claims_digest")
