"""Trading desk: agent configurations, durable desk state, approvals and per-agent daily LLM usage.

Revision ID: 0003_agents
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_agents"
down_revision = "0002_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_configs",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("agent_type", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_configs")),
    )
    op.create_table(
        "desk_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_desk_state")),
    )
    op.create_table(
        "desk_approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("proposal", sa.JSON(), nullable=True),
        sa.Column("assessment", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("execution", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_approvals")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_desk_approvals_decision_id")),
    )
    with op.batch_alter_table("desk_approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_desk_approvals_status"), ["status"], unique=False)
    op.create_table(
        "agent_usage",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("usd", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "day", name=op.f("pk_agent_usage")),
    )


def downgrade() -> None:
    op.drop_table("agent_usage")
    with op.batch_alter_table("desk_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_desk_approvals_status"))
    op.drop_table("desk_approvals")
    op.drop_table("desk_state")
    op.drop_table("agent_configs")
