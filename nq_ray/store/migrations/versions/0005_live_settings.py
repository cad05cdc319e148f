"""Live settings overlay: ``live_settings`` (the merged live patch, the start-up values it overrides and a
version that only grows), so every actor and replica reads the same effective settings when it starts.

Revision ID: 0005_live_settings
Revises: 0004_llm
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_live_settings"
down_revision = "0004_llm"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_settings",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("patch", sa.JSON(), nullable=False),
        sa.Column("base", sa.JSON(), nullable=False),
        sa.Column("change_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_live_settings")),
    )


def downgrade() -> None:
    op.drop_table("live_settings")
