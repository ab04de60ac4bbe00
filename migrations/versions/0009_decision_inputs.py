"""decision inputs

`policy_decisions.inputs_digest`: the digest of what a decision was made from (the policy's
spec, the tags and their states, the previous and deployed tags, gitward's version; see
engine/evaluate/decision.py `decision_inputs`), as of the row's latest run. A pass whose inputs
match the latest row's counts that row again without evaluating the policy. Nullable: rows
older than this revision, and gates' records, have none, and are decided as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

Frozen history: types and view SQL are spelled out here or read from the migration that made
them, not imported from engine/.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(stem: str) -> ModuleType:
    """Another migration file, for its definitions (a migration file is not an importable module)."""
    spec = importlib.util.spec_from_file_location(f"gitward_migration_{stem}",
                                                  Path(__file__).with_name(f"{stem}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _policy_decisions() -> sa.Table:
    """`policy_decisions` as of this revision, for SQLite's batch mode (offline it cannot reflect)."""
    time = sa.DateTime(timezone=True)
    return sa.Table(
        "policy_decisions", sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(253), nullable=False),
        sa.Column("scan_id", sa.Integer(), nullable=True),
        sa.Column("selected_tag", sa.String(128), nullable=True),
        sa.Column("previous_tag", sa.String(128), nullable=True),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("verdict_counts", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("decided_at", time, nullable=False),
        sa.Column("trace_digest", sa.String(64), nullable=True),
        sa.Column("since", time, nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("inputs_digest", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_policy_decisions"),
        sa.ForeignKeyConstraint(["scan_id"], ["image_scans.id"],
                                name="fk_policy_decisions_scan_id_image_scans", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["trace_digest"], ["decision_traces.digest"],
                                name="fk_policy_decisions_trace_digest_decision_traces"),
        sa.Index("ix_policy_decisions_policy_decided_at", "policy", "decided_at"),
        sa.Index("ix_policy_decisions_scan_id", "scan_id"),
    )


def upgrade() -> None:
    op.add_column("policy_decisions", sa.Column("inputs_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop the column; the views (0008's) are made again around the table's rebuild."""
    views = _migration("0008_decision_ledger")
    dialect = op.get_context().dialect.name
    definitions = views.definitions(dialect)
    for name in reversed(list(definitions)):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    with op.batch_alter_table("policy_decisions", copy_from=_policy_decisions()) as batch:
        batch.drop_column("inputs_digest")
    for name, body in definitions.items():
        op.execute(f"CREATE VIEW {name} AS {body.strip()}")
