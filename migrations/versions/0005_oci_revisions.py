"""oci revisions

The `oci_revisions` table: the artifact an OCIRepository resolved to each time it changed (its
tag, manifest digest, selected layer and annotations), as `git_revisions` holds commits.
`cluster_objects.revision` becomes text: an OCI revision (`<tag>@sha256:<64 hex>`) does not fit
the 64 characters a git revision did.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Frozen history: types are spelled out, not imported from engine/store/schema.py. The views of
0003 read `cluster_objects`; they are dropped before its column changes and created again after
from 0003's own (frozen) definitions.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _views() -> ModuleType:
    """Migration 0003, for its view definitions (a migration file is not an importable module)."""
    spec = importlib.util.spec_from_file_location("gitward_migration_0003",
                                                  Path(__file__).with_name("0003_views.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cluster_objects(revision_type: sa.types.TypeEngine[str]) -> sa.Table:
    """`cluster_objects` as 0001 created it, for SQLite's batch mode (offline it cannot reflect)."""
    return sa.Table(
        "cluster_objects", sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kustomization", sa.String(253), nullable=False),
        sa.Column("api_group", sa.String(253), nullable=False),
        sa.Column("version", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("revision", revision_type, nullable=False),
        sa.Column("checksum", sa.String(128), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cluster_objects"),
        sa.UniqueConstraint("kustomization", "api_group", "kind", "namespace", "name",
                            name="uq_cluster_objects_kustomization_api_group_kind_namespace_name"),
    )


def _retype_revision(old: sa.types.TypeEngine[str], new: sa.types.TypeEngine[str]) -> None:
    views = _views()
    definitions = views._definitions(op.get_context().dialect.name)
    for name in reversed(views.VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    with op.batch_alter_table("cluster_objects", copy_from=_cluster_objects(old)) as batch:
        batch.alter_column("revision", existing_type=old, type_=new, existing_nullable=False)
    for name in views.VIEWS:
        op.execute(f"CREATE VIEW {name} AS {definitions[name].strip()}")


def upgrade() -> None:
    op.create_table(
        "oci_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(253), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("revision", sa.Text(), nullable=False),
        sa.Column("layer_digest", sa.String(80), nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("origin_source", sa.Text(), nullable=False),
        sa.Column("origin_revision", sa.Text(), nullable=False),
        sa.Column("created", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("operation IN ('extract', 'copy')", name=op.f("ck_oci_revisions_operation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oci_revisions")),
        sa.UniqueConstraint("source", "digest", name=op.f("uq_oci_revisions_source_digest")),
    )
    op.create_index(op.f("ix_oci_revisions_source_fetched_at"), "oci_revisions", ["source", "fetched_at"])
    _retype_revision(sa.String(64), sa.Text())


def downgrade() -> None:
    _retype_revision(sa.Text(), sa.String(64))
    op.drop_index(op.f("ix_oci_revisions_source_fetched_at"), table_name="oci_revisions")
    op.drop_table("oci_revisions")
