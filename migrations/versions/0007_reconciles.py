"""reconciles

The `reconciles` table: each object's latest reconcile by `gitward run` (when it ran, how it
ended, what it reached), one row per object updated in place, so an object that ran and found
nothing to do is seen to have run, without a row per interval.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

Frozen history: types are spelled out, not imported from engine/store/schema.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciles",
        sa.Column("object_kind", sa.String(63), nullable=False),
        sa.Column("object_name", sa.String(253), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("revision", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.CheckConstraint("outcome IN ('ok', 'failed')", name=op.f("ck_reconciles_outcome")),
        sa.PrimaryKeyConstraint("object_kind", "object_name", name=op.f("pk_reconciles")),
    )


def downgrade() -> None:
    op.drop_table("reconciles")
