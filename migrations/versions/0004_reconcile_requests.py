"""reconcile requests

The `reconcile_requests` table: `gitward reconcile` asks a running `gitward run` (on any machine
sharing the store) to reconcile an object now, and reads the answer from the same row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Frozen history: types are spelled out, not imported from engine/store/schema.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconcile_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_kind", sa.String(63), nullable=False),
        sa.Column("object_name", sa.String(253), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_by", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("revision", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.CheckConstraint("outcome IN ('ok', 'failed')",
                           name=op.f("ck_reconcile_requests_outcome")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_requests")),
    )
    op.create_index(op.f("ix_reconcile_requests_finished_at_object_kind_object_name"),
                    "reconcile_requests", ["finished_at", "object_kind", "object_name"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reconcile_requests_finished_at_object_kind_object_name"),
                  table_name="reconcile_requests")
    op.drop_table("reconcile_requests")
