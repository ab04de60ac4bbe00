"""initial schema

The eight tables of docs/sql.md: git revisions, image scans and tags, policy decisions,
cluster objects, actions, events and suspensions.

Revision ID: 0001
Revises:
Create Date: 2025-11-26

A migration is frozen history: it spells out its types (timestamps are DateTime(timezone=True))
instead of importing engine/store/schema.py, which keeps changing.
"""

from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _name(name: str) -> sa.Column[Any]:
    """A `namespace/name` column."""
    return sa.Column(name, sa.String(253), nullable=False)


def _id(table: str) -> tuple[sa.Column[Any], sa.PrimaryKeyConstraint]:
    column = sa.Column("id", sa.Integer(), nullable=False)
    return column, sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))


def upgrade() -> None:
    op.create_table(
        "git_revisions",
        *_id("git_revisions"),
        _name("source"),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("sha", sa.String(64), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        _time("committed_at", nullable=True),
        _time("fetched_at"),
        sa.UniqueConstraint("source", "sha", name=op.f("uq_git_revisions_source_sha")),
    )
    op.create_index(op.f("ix_git_revisions_source_fetched_at"), "git_revisions", ["source", "fetched_at"])

    op.create_table(
        "image_scans",
        *_id("image_scans"),
        _name("repository"),
        _time("started_at"),
        _time("finished_at"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tag_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('ok', 'failed')", name=op.f("ck_image_scans_status")),
    )
    op.create_index(op.f("ix_image_scans_repository_started_at"), "image_scans", ["repository", "started_at"])

    op.create_table(
        "image_tags",
        *_id("image_tags"),
        _name("repository"),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(100), nullable=True),
        _time("first_seen"),
        _time("last_seen"),
        _time("gone_at", nullable=True),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("repository", "tag", name=op.f("uq_image_tags_repository_tag")),
    )

    op.create_table(
        "policy_decisions",
        *_id("policy_decisions"),
        _name("policy"),
        sa.Column("scan_id", sa.Integer(), nullable=True),
        sa.Column("selected_tag", sa.String(128), nullable=True),
        sa.Column("previous_tag", sa.String(128), nullable=True),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("verdict_counts", sa.JSON(), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _time("decided_at"),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["image_scans.id"],
            name=op.f("fk_policy_decisions_scan_id_image_scans"), ondelete="SET NULL",
        ),
    )
    op.create_index(
        op.f("ix_policy_decisions_policy_decided_at"), "policy_decisions", ["policy", "decided_at"]
    )
    op.create_index(op.f("ix_policy_decisions_scan_id"), "policy_decisions", ["scan_id"])

    op.create_table(
        "cluster_objects",
        *_id("cluster_objects"),
        _name("kustomization"),
        sa.Column("api_group", sa.String(253), nullable=False),
        sa.Column("version", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("checksum", sa.String(128), nullable=False),
        _time("applied_at"),
        _time("pruned_at", nullable=True),
        sa.UniqueConstraint(
            "kustomization", "api_group", "kind", "namespace", "name",
            name=op.f("uq_cluster_objects_kustomization_api_group_kind_namespace_name"),
        ),
    )

    op.create_table(
        "actions",
        *_id("actions"),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _time("created_at"),
        _time("finished_at", nullable=True),
        sa.CheckConstraint("type IN ('commit', 'apply', 'prune')", name=op.f("ck_actions_type")),
        sa.CheckConstraint(
            "status IN ('planned', 'done', 'failed', 'skipped')", name=op.f("ck_actions_status")
        ),
    )
    op.create_index(op.f("ix_actions_plan_id"), "actions", ["plan_id"])
    op.create_index(op.f("ix_actions_created_at"), "actions", ["created_at"])

    op.create_table(
        "events",
        *_id("events"),
        _time("time"),
        sa.Column("object_kind", sa.String(63), nullable=False),
        _name("object_name"),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.CheckConstraint("severity IN ('info', 'warning', 'error')", name=op.f("ck_events_severity")),
    )
    op.create_index(op.f("ix_events_time"), "events", ["time"])
    op.create_index(
        op.f("ix_events_object_kind_object_name_time"), "events", ["object_kind", "object_name", "time"]
    )

    op.create_table(
        "suspensions",
        sa.Column("object_kind", sa.String(63), nullable=False),
        _name("object_name"),
        _time("suspended_at"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("object_kind", "object_name", name=op.f("pk_suspensions")),
    )


def downgrade() -> None:
    for table in (
        "suspensions", "events", "actions", "cluster_objects",
        "policy_decisions", "image_tags", "image_scans", "git_revisions",
    ):
        op.drop_table(table)
