"""The state database's tables: a public API that users query with `sqlite3` or `psql`.

Names are plain and stable (docs/sql.md lists every column); Alembic in `migrations/` owns the
DDL, and a test checks that these models and the migrations agree. Constraint names follow a
naming convention so that both dialects, and future migrations, agree on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from engine.model import ActionStatus, Gate

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime: `timestamptz` on PostgreSQL, `YYYY-MM-DD HH:MM:SS.ffffff` text on SQLite.

    SQLite has no time zone type, so the text is UTC without an offset, which is the form
    SQLite's own `datetime('now')` produces: comparisons with it work as written.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the state store; use UTC")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """SQLite's text parsed once per distinct value: the tags of a repository share a few
        times (those of the scans that found them), and parsing one per row and column was
        most of reading a repository's tags. Datetimes are immutable, so sharing them is safe."""
        process = super().result_processor(dialect, coltype)
        if process is None or dialect.name != "sqlite":
            return process
        parsed: dict[str, datetime | None] = {}

        def cached(value: str | None) -> datetime | None:
            if value is None:
                return None
            found = parsed.get(value)
            if found is None:
                if len(parsed) >= _PARSED_KEPT:
                    parsed.clear()
                found = parsed[value] = process(value)
            return found

        return cached


_PARSED_KEPT = 4096
"""Distinct SQLite datetimes a column type keeps parsed (`UtcDateTime.result_processor`)."""


NAME = String(253)
"""`namespace/name` of a Kubernetes-style object (253 is Kubernetes' name limit)."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class GitRevisionRow(Base):
    __tablename__ = "git_revisions"
    __table_args__ = (
        UniqueConstraint("source", "sha"),
        Index(None, "source", "fetched_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(NAME)
    url: Mapped[str] = mapped_column(Text)
    branch: Mapped[str] = mapped_column(String(255))
    sha: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    committed_at: Mapped[datetime | None]
    fetched_at: Mapped[datetime]


class ImageScanRow(Base):
    """A scan, or a run of identical ones: a scan that finds what the one before found (the
    same outcome, error and tags) moves `started_at` and `finished_at` forward in place and
    counts itself in `runs`; `since` is when the first scan of the run started."""

    __tablename__ = "image_scans"
    __table_args__ = (
        CheckConstraint("status IN ('ok', 'failed')", name="status"),
        Index(None, "repository", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository: Mapped[str] = mapped_column(NAME)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    tag_count: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    since: Mapped[datetime]
    runs: Mapped[int] = mapped_column(Integer)


class ImageTagRow(Base):
    __tablename__ = "image_tags"
    __table_args__ = (UniqueConstraint("repository", "tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository: Mapped[str] = mapped_column(NAME)
    tag: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str | None] = mapped_column(String(100))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    gone_at: Mapped[datetime | None]
    excluded: Mapped[bool] = mapped_column(Boolean)


class ImageConfigRow(Base):
    """When an image was built, as its configuration says (`created`, NULL when it says
    nothing): read once per manifest digest, for the rollback gate."""

    __tablename__ = "image_configs"

    digest: Mapped[str] = mapped_column(String(100), primary_key=True)
    created: Mapped[datetime | None]
    fetched_at: Mapped[datetime]


class DecisionTraceRow(Base):
    """A decision's trace, stored once per distinct trace (keyed by its digest).

    `trace` is the whole array when `base` is NULL, else the changes from the trace `base`
    names (engine/store/traces.py); `depth` counts the steps back to a whole one, so a reader
    decodes a bounded chain."""

    __tablename__ = "decision_traces"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    base: Mapped[str | None] = mapped_column(ForeignKey("decision_traces.digest"))
    depth: Mapped[int] = mapped_column(Integer)
    tags: Mapped[int] = mapped_column(Integer)
    trace: Mapped[Any] = mapped_column(JSON())


class PolicyDecisionRow(Base):
    """A decision, or a run of identical ones: a decision like the policy's latest (same
    selection, previous tag, counts, error, gate and trace) moves `decided_at` and `scan_id` to
    the latest in place and counts itself in `runs`; `since` is when it was first made. A row
    with a `gate` is that gate's record of holding `selected_tag` out of git (`error`: why). A
    decision from the same inputs as the latest row's (`inputs_digest`) is counted there without
    being made again."""

    __tablename__ = "policy_decisions"
    __table_args__ = (
        CheckConstraint(f"gate IN ({', '.join(repr(g.value) for g in Gate)})", name="gate"),
        Index(None, "policy", "decided_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy: Mapped[str] = mapped_column(NAME)
    scan_id: Mapped[int | None] = mapped_column(
        ForeignKey("image_scans.id", ondelete="SET NULL"), index=True
    )
    selected_tag: Mapped[str | None] = mapped_column(String(128))
    previous_tag: Mapped[str | None] = mapped_column(String(128))
    candidates: Mapped[int] = mapped_column(Integer)
    verdict_counts: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime]
    trace_digest: Mapped[str | None] = mapped_column(ForeignKey("decision_traces.digest"))
    since: Mapped[datetime]
    runs: Mapped[int] = mapped_column(Integer)
    gate: Mapped[str | None] = mapped_column(String(32))
    inputs_digest: Mapped[str | None] = mapped_column(String(64), deferred=True)
    """What the decision was made from, as of its latest run (engine/evaluate/decision.py
    `decision_inputs`); None for a gate's record and for rows older than migration 0010.
    Deferred: only the writer that compares it loads it, so a reader of a store left at an
    older revision (read-only) still reads its decisions."""


class ClusterObjectRow(Base):
    __tablename__ = "cluster_objects"
    __table_args__ = (
        UniqueConstraint("kustomization", "api_group", "kind", "namespace", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kustomization: Mapped[str] = mapped_column(NAME)
    api_group: Mapped[str] = mapped_column(String(253))
    version: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(63))
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(253))
    revision: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(128))
    applied_at: Mapped[datetime]
    pruned_at: Mapped[datetime | None]


class ActionRow(Base):
    __tablename__ = "actions"
    __table_args__ = (
        CheckConstraint("type IN ('commit', 'apply', 'prune')", name="type"),
        CheckConstraint(f"status IN ({', '.join(repr(s.value) for s in ActionStatus)})",
                        name="status"),
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("severity IN ('info', 'warning', 'error')", name="severity"),
        Index(None, "object_kind", "object_name", "time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(index=True)
    object_kind: Mapped[str] = mapped_column(String(63))
    object_name: Mapped[str] = mapped_column(NAME)
    severity: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text)


class SuspensionRow(Base):
    __tablename__ = "suspensions"

    object_kind: Mapped[str] = mapped_column(String(63), primary_key=True)
    object_name: Mapped[str] = mapped_column(NAME, primary_key=True)
    suspended_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)


class LeaseRow(Base):
    """One writer at a time per name (`git:<url>#<branch>`), across processes sharing the store."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    holder: Mapped[str] = mapped_column(Text)
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class ReconcileRequestRow(Base):
    """`gitward reconcile` asking a running `gitward run` to reconcile an object now.

    The daemon that reconciles the object answers every request made before it started:
    `finished_at`, `handled_by`, `outcome` and `message` stay NULL until then.
    """

    __tablename__ = "reconcile_requests"
    __table_args__ = (
        CheckConstraint("outcome IN ('ok', 'failed')", name="outcome"),
        Index(None, "finished_at", "object_kind", "object_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_kind: Mapped[str] = mapped_column(String(63))
    object_name: Mapped[str] = mapped_column(NAME)
    requested_at: Mapped[datetime]
    requested_by: Mapped[str] = mapped_column(Text)
    finished_at: Mapped[datetime | None]
    handled_by: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(16))
    revision: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)


class OciRevisionRow(Base):
    """The artifact an OCIRepository resolved to, once per manifest digest (as `git_revisions`)."""

    __tablename__ = "oci_revisions"
    __table_args__ = (
        UniqueConstraint("source", "digest"),
        CheckConstraint("operation IN ('extract', 'copy')", name="operation"),
        Index(None, "source", "fetched_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(NAME)
    url: Mapped[str] = mapped_column(Text)
    tag: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(80))
    revision: Mapped[str] = mapped_column(Text)
    layer_digest: Mapped[str] = mapped_column(String(80))
    media_type: Mapped[str] = mapped_column(String(255))
    operation: Mapped[str] = mapped_column(String(16))
    origin_source: Mapped[str] = mapped_column(Text)
    origin_revision: Mapped[str] = mapped_column(Text)
    created: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime]


class ReconcileRow(Base):
    """Each object's latest reconcile by `gitward run`, updated in place (a heartbeat): `since` is
    when its outcome and message became what they are, `runs` how many reconciles it has had."""

    __tablename__ = "reconciles"
    __table_args__ = (CheckConstraint("outcome IN ('ok', 'failed')", name="outcome"),)

    object_kind: Mapped[str] = mapped_column(String(63), primary_key=True)
    object_name: Mapped[str] = mapped_column(NAME, primary_key=True)
    finished_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    revision: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime]
    runs: Mapped[int] = mapped_column(Integer)
