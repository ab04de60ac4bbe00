"""decision ledger

Record changes, not repetitions. A scan or a decision like the one before it no longer adds a
row: the latest row's times move forward and `runs` counts it (`image_scans.since`, `.runs`;
`policy_decisions.since`, `.runs`). Traces move to `decision_traces`, one row per distinct
trace (keyed by its SHA-256), which `policy_decisions.trace_digest` names; a new trace may be
stored as its changes from the policy's previous one (`base`, `depth`). `v_policy_latest` finds
each policy's latest selection through the `(policy, decided_at)` index, one lookup per policy.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Existing rows move: each distinct trace is stored whole once and the decisions name it; every
existing scan and decision stands for one run (`since` = its start, `runs` = 1). Frozen
history: types and view SQL are spelled out here, not imported from engine/.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each policy's latest decision that selected a tag: one indexed lookup per policy.
POLICY_LATEST = """
SELECT d.policy AS policy,
       d.selected_tag AS selected_tag,
       d.previous_tag AS previous_tag,
       d.decided_at AS decided_at,
       d.id AS decision_id,
       d.scan_id AS scan_id,
       s.repository AS repository,
       s.finished_at AS scanned_at
FROM (SELECT DISTINCT policy FROM policy_decisions) p
JOIN policy_decisions d ON d.id = (
    SELECT n.id FROM policy_decisions n
    WHERE n.policy = p.policy AND n.selected_tag IS NOT NULL
    ORDER BY n.decided_at DESC, n.id DESC
    LIMIT 1)
LEFT JOIN image_scans s ON s.id = d.scan_id
"""


def _views() -> ModuleType:
    """Migration 0003, for its view definitions (a migration file is not an importable module)."""
    spec = importlib.util.spec_from_file_location("gitward_migration_0003",
                                                  Path(__file__).with_name("0003_views.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def definitions(dialect: str) -> dict[str, str]:
    """The views as of this revision: 0003's, with `v_policy_latest` read latest first."""
    return {**_views()._definitions(dialect), "v_policy_latest": POLICY_LATEST}


def _time(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _image_scans() -> sa.Table:
    """`image_scans` as 0001 created it, for SQLite's batch mode (offline it cannot reflect)."""
    return sa.Table(
        "image_scans", sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(253), nullable=False),
        _time("started_at"),
        _time("finished_at"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tag_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _time("since", nullable=True),
        sa.Column("runs", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_image_scans"),
        sa.CheckConstraint("status IN ('ok', 'failed')", name="ck_image_scans_status"),
        sa.Index("ix_image_scans_repository_started_at", "repository", "started_at"),
    )


def _policy_decisions(linked: bool = False) -> sa.Table:
    """`policy_decisions` as 0001 created it plus this revision's columns (`linked`: and the
    foreign key to `decision_traces`), for batch mode."""
    link = [sa.ForeignKeyConstraint(["trace_digest"], ["decision_traces.digest"],
                                    name="fk_policy_decisions_trace_digest_decision_traces")]
    return sa.Table(
        "policy_decisions", sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(253), nullable=False),
        sa.Column("scan_id", sa.Integer(), nullable=True),
        sa.Column("selected_tag", sa.String(128), nullable=True),
        sa.Column("previous_tag", sa.String(128), nullable=True),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("verdict_counts", sa.JSON(), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _time("decided_at"),
        sa.Column("trace_digest", sa.String(64), nullable=True),
        _time("since", nullable=True),
        sa.Column("runs", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_policy_decisions"),
        sa.ForeignKeyConstraint(["scan_id"], ["image_scans.id"],
                                name="fk_policy_decisions_scan_id_image_scans", ondelete="SET NULL"),
        sa.Index("ix_policy_decisions_policy_decided_at", "policy", "decided_at"),
        sa.Index("ix_policy_decisions_scan_id", "scan_id"),
        *(link if linked else []),
    )


def _digest(trace: list[Any]) -> str:
    """SHA-256 of the trace's JSON with sorted keys and no spaces (engine/store/traces.py)."""
    text = json.dumps(trace, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _move_traces() -> None:
    """Store each distinct trace once, whole, and point its decisions at it."""
    bind = op.get_bind()
    decisions = _policy_decisions()
    traces = sa.table("decision_traces", sa.column("digest", sa.String()),
                      sa.column("base", sa.String()), sa.column("depth", sa.Integer()),
                      sa.column("tags", sa.Integer()), sa.column("trace", sa.JSON()))
    stored: set[str] = set()
    rows = bind.execute(sa.select(decisions.c.id, decisions.c.trace)).all()
    for row in rows:
        trace = row.trace if isinstance(row.trace, list) else json.loads(row.trace or "[]")
        if not trace:
            continue
        digest = _digest(trace)
        if digest not in stored:
            bind.execute(sa.insert(traces).values(digest=digest, base=None, depth=0,
                                                  tags=len(trace), trace=trace))
            stored.add(digest)
        bind.execute(sa.update(decisions).where(decisions.c.id == row.id)
                     .values(trace_digest=digest))


_INDEXES = (
    ("image_scans", "ix_image_scans_repository_started_at", ["repository", "started_at"]),
    ("policy_decisions", "ix_policy_decisions_policy_decided_at", ["policy", "decided_at"]),
    ("policy_decisions", "ix_policy_decisions_scan_id", ["scan_id"]),
)


def _reindex_in_order() -> None:
    """SQLite's batch mode recreates a table's indexes in set order, which differs from run to
    run; made again in a fixed order, the schema (and `.dump`) is the same on every run."""
    if op.get_context().dialect.name != "sqlite":
        return
    for table, name, columns in _INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns)


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    for name in reversed(_views().VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.create_table(
        "decision_traces",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("base", sa.String(64), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("tags", sa.Integer(), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["base"], ["decision_traces.digest"],
                                name=op.f("fk_decision_traces_base_decision_traces")),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_decision_traces")),
    )
    op.add_column("image_scans", _time("since", nullable=True))
    op.add_column("image_scans", sa.Column("runs", sa.Integer(), nullable=True))
    op.add_column("policy_decisions", sa.Column("trace_digest", sa.String(64), nullable=True))
    op.add_column("policy_decisions", _time("since", nullable=True))
    op.add_column("policy_decisions", sa.Column("runs", sa.Integer(), nullable=True))
    op.execute("UPDATE image_scans SET since = started_at, runs = 1")
    op.execute("UPDATE policy_decisions SET since = decided_at, runs = 1")
    if not context.is_offline_mode():
        _move_traces()
    with op.batch_alter_table("image_scans", copy_from=_image_scans()) as batch:
        batch.alter_column("since", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.alter_column("runs", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("policy_decisions", copy_from=_policy_decisions()) as batch:
        batch.drop_column("trace")
        batch.alter_column("since", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.alter_column("runs", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(op.f("fk_policy_decisions_trace_digest_decision_traces"),
                                 "decision_traces", ["trace_digest"], ["digest"])
    _reindex_in_order()
    for name, body in definitions(dialect).items():
        op.execute(f"CREATE VIEW {name} AS {body.strip()}")


def _restore_traces() -> None:
    """Give each decision its trace whole again. Decoding a stored change needs gitward's own
    decoder, so this one step reads engine/store/traces.py (only a downgrade runs it)."""
    from sqlalchemy.orm import Session

    from engine.store.traces import load_trace, trace_json

    bind = op.get_bind()
    decisions = _policy_decisions()
    session = Session(bind=bind)
    rows = bind.execute(sa.select(decisions.c.id, decisions.c.trace_digest)).all()
    for row in rows:
        trace = trace_json(load_trace(session, row.trace_digest)) if row.trace_digest else []
        bind.execute(sa.update(decisions).where(decisions.c.id == row.id).values(trace=trace))


def downgrade() -> None:
    """Back to a trace per decision; a run of identical scans or decisions stays one row."""
    dialect = op.get_context().dialect.name
    for name in reversed(_views().VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.add_column("policy_decisions", sa.Column("trace", sa.JSON(), nullable=True))
    if not context.is_offline_mode():
        _restore_traces()
    with op.batch_alter_table("policy_decisions", copy_from=_policy_decisions(linked=True)) as batch:
        batch.drop_constraint(op.f("fk_policy_decisions_trace_digest_decision_traces"),
                              type_="foreignkey")
        batch.drop_column("trace_digest")
        batch.drop_column("since")
        batch.drop_column("runs")
        batch.alter_column("trace", existing_type=sa.JSON(), nullable=False)
    with op.batch_alter_table("image_scans", copy_from=_image_scans()) as batch:
        batch.drop_column("since")
        batch.drop_column("runs")
    _reindex_in_order()
    op.drop_table("decision_traces")
    for name, body in _views()._definitions(dialect).items():
        op.execute(f"CREATE VIEW {name} AS {body.strip()}")
