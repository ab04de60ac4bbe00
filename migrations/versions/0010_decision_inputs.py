"""decision inputs

`policy_decisions.inputs_digest`: the digest of what a decision was made from (the policy's
spec, the tags and their states, the previous and deployed tags, gitward's version; see
engine/evaluate/decision.py `decision_inputs`), as of the row's latest run. A pass whose inputs
match the latest row's counts that row again without evaluating the policy. Nullable: rows
older than this revision, and gates' records, have none, and are decided as before.

Revision ID: 0010
Revises: 0009
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

revision: str = "0010"
down_revision: str | None = "0009"
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


def upgrade() -> None:
    op.add_column("policy_decisions", sa.Column("inputs_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop the column; SQLite rebuilds the table as 0009 left it (its views, foreign keys and
    indexes made again as 0009 makes them)."""
    gate = _migration("0009_decision_gate")
    views = gate._drop_views()
    table = gate._policy_decisions(gate=True)
    table.append_column(sa.Column("inputs_digest", sa.String(64), nullable=True))
    with op.batch_alter_table("policy_decisions", copy_from=table) as batch:
        batch.drop_column("inputs_digest")
        gate._link(batch)
    gate._reindex_in_order()
    gate._create_views(views)
