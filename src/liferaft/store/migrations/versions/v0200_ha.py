"""ha: compute hosts watched by host HA (lifecycle, maintenance, reserved pool, incarnation)

Revision ID: 0200
Revises: 0001
Branch: ha
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0200"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("ha",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "ha_hosts",
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("maintenance", sa.Boolean(), nullable=False),
        sa.Column("in_pool", sa.Boolean(), nullable=False),
        sa.Column("incarnation", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("site", "host"),
    )


def downgrade() -> None:
    op.drop_table("ha_hosts")
