"""protection: policies (with ORBIT's default), groups, protected resources, checkpoints, plans, runs

Revision ID: 0100
Revises: 0001
Branch: protection
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0100"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("protection",)
depends_on: str | None = None

#: ORBIT creates a default recovery policy when the orchestrator starts; so does this revision.
DEFAULT_POLICY = {
    "name": "default",
    "rpo_seconds": 900.0,
    "interval_seconds": 300.0,
    "retention_count": 6,
    "retention_age_seconds": 86400.0,
    "consistency": "ordered-quiesce",
    "method": "snapshot-backup",
    "chain_length": 12,
    "updated_at": 0.0,
}


def upgrade() -> None:
    policies = op.create_table(
        "protection_policies",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rpo_seconds", sa.Float(), nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.Column("retention_count", sa.Integer(), nullable=False),
        sa.Column("retention_age_seconds", sa.Float(), nullable=False),
        sa.Column("consistency", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("chain_length", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(policies, [DEFAULT_POLICY])
    op.create_table(
        "protection_groups",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("recovery_site", sa.String(length=100), nullable=False),
        sa.Column("policy", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "protected_resources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cloud_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("quiesce_rank", sa.Integer(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site", "kind", "cloud_id", name="uq_protected_resource"),
    )
    with op.batch_alter_table("protected_resources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_protected_resources_group_id"), ["group_id"], unique=False
        )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("captured_at", sa.Float(), nullable=True),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("chain_id", sa.String(length=64), nullable=False),
        sa.Column("consistency", sa.String(length=32), nullable=True),
        sa.Column("volumes", sa.JSON(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=True),
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkpoints_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_checkpoints_state"), ["state"], unique=False)
    op.create_table(
        "recovery_plans",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("protected_site", sa.String(length=100), nullable=False),
        sa.Column("recovery_site", sa.String(length=100), nullable=False),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "recovery_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("protected_site", sa.String(length=100), nullable=False),
        sa.Column("recovery_site", sa.String(length=100), nullable=False),
        sa.Column("declared_down", sa.String(length=100), nullable=True),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("recovery_runs")
    op.drop_table("recovery_plans")
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkpoints_state"))
        batch_op.drop_index(batch_op.f("ix_checkpoints_group_id"))
    op.drop_table("checkpoints")
    with op.batch_alter_table("protected_resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_protected_resources_group_id"))
    op.drop_table("protected_resources")
    op.drop_table("protection_groups")
    op.drop_table("protection_policies")
