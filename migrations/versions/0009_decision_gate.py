"""decision gate

A gate's record of holding an update back says which gate in a column of its own,
`policy_decisions.gate` (`hold`, `never-downgrade`, `pin`, `rollback`, `digest`; NULL for a
decision of the policy), instead of a `gated: <gate>: ` prefix on `error`, which keeps the
gate's reason and the marked value's `file:line`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

Existing rows move: an error `gated: hold: <reason>` becomes gate `hold`, error `<reason>`; a
downgrade puts the prefix back. Frozen history: the gate names, types and views are spelled
out here (the views are 0008's), not imported from engine/.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GATES = ("hold", "never-downgrade", "pin", "rollback", "digest")
CHECK = "gate IN ('hold', 'never-downgrade', 'pin', 'rollback', 'digest')"
PREFIX = "gated: "


def _0008() -> ModuleType:
    """Migration 0008, for its views and its `policy_decisions` (a migration file is not an
    importable module)."""
    spec = importlib.util.spec_from_file_location("gitward_migration_0008",
                                                  Path(__file__).with_name("0008_decision_ledger.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _policy_decisions(gate: bool) -> sa.Table:
    """`policy_decisions` as 0008 left it (`gate`: and this revision's column), for SQLite's
    batch mode (offline it cannot reflect). Its foreign key to `decision_traces` is left out and
    added back in the batch (`_link`): two in one table come out in set order, which differs
    from run to run."""
    columns: list[Any] = [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(253), nullable=False),
        sa.Column("scan_id", sa.Integer(), nullable=True),
        sa.Column("selected_tag", sa.String(128), nullable=True),
        sa.Column("previous_tag", sa.String(128), nullable=True),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("verdict_counts", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trace_digest", sa.String(64), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_decisions"),
        sa.ForeignKeyConstraint(["scan_id"], ["image_scans.id"],
                                name="fk_policy_decisions_scan_id_image_scans", ondelete="SET NULL"),
        sa.Index("ix_policy_decisions_policy_decided_at", "policy", "decided_at"),
        sa.Index("ix_policy_decisions_scan_id", "scan_id"),
    ]
    if gate:
        columns += [sa.Column("gate", sa.String(32), nullable=True),
                    sa.CheckConstraint(CHECK, name="ck_policy_decisions_gate")]
    return sa.Table("policy_decisions", sa.MetaData(), *columns)


def _reindex_in_order() -> None:
    """SQLite's batch mode recreates indexes in set order; made again in a fixed one, the
    schema (and `.dump`) is the same on every run (as 0008 does)."""
    if op.get_context().dialect.name != "sqlite":
        return
    for name, columns in (("ix_policy_decisions_policy_decided_at", ["policy", "decided_at"]),
                          ("ix_policy_decisions_scan_id", ["scan_id"])):
        op.drop_index(name, table_name="policy_decisions")
        op.create_index(name, "policy_decisions", columns)


def _link(batch: Any) -> None:
    """The foreign key `_policy_decisions` leaves out, added back after the others (SQLite
    rebuilds the table; PostgreSQL alters it in place and keeps it)."""
    if op.get_context().dialect.name == "sqlite":
        batch.create_foreign_key(op.f("fk_policy_decisions_trace_digest_decision_traces"),
                                 "decision_traces", ["trace_digest"], ["digest"])


def _drop_views() -> dict[str, str]:
    """Drop the views (SQLite's batch mode rebuilds a table they read); their definitions."""
    views = _0008()
    for name in reversed(views._views().VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    definitions: dict[str, str] = views.definitions(op.get_context().dialect.name)
    return definitions


def _create_views(definitions: dict[str, str]) -> None:
    for name, body in definitions.items():
        op.execute(f"CREATE VIEW {name} AS {body.strip()}")


def upgrade() -> None:
    views = _drop_views()
    with op.batch_alter_table("policy_decisions", copy_from=_policy_decisions(gate=False)) as batch:
        batch.add_column(sa.Column("gate", sa.String(32), nullable=True))
        batch.create_check_constraint(op.f("ck_policy_decisions_gate"), CHECK)
        _link(batch)
    _reindex_in_order()
    decisions = sa.table("policy_decisions", sa.column("gate", sa.String()),
                         sa.column("error", sa.Text()))
    for gate in GATES:
        prefix = f"{PREFIX}{gate}: "
        op.execute(sa.update(decisions)
                   .where(decisions.c.error.like(f"{prefix}%"))
                   .values(gate=gate, error=sa.func.substr(decisions.c.error, len(prefix) + 1)))
    _create_views(views)


def downgrade() -> None:
    views = _drop_views()
    decisions = sa.table("policy_decisions", sa.column("gate", sa.String()),
                         sa.column("error", sa.Text()))
    op.execute(sa.update(decisions).where(decisions.c.gate.is_not(None))
               .values(error=sa.literal(PREFIX) + decisions.c.gate + sa.literal(": ")
                       + sa.func.coalesce(decisions.c.error, ""), gate=None))
    with op.batch_alter_table("policy_decisions", copy_from=_policy_decisions(gate=True)) as batch:
        batch.drop_constraint(op.f("ck_policy_decisions_gate"), type_="check")
        batch.drop_column("gate")
        _link(batch)
    _reindex_in_order()
    _create_views(views)
