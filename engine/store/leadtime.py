"""Reads of `v_tag_lead_time`: how long each committed tag took from the registry to git to
the cluster (migrations/versions/0003_views.py defines the view; docs/sql.md explains it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, String, column, select, table

from engine.store.db import Store
from engine.store.queries import transaction
from engine.store.schema import UtcDateTime

_VIEW = table(
    "v_tag_lead_time",
    column("policy", String), column("repository", String), column("tag", String),
    column("first_seen", UtcDateTime()), column("commit_sha", String),
    column("committed_at", UtcDateTime()), column("applied_at", UtcDateTime()),
    column("seconds_to_commit", Integer), column("seconds_to_apply", Integer),
)


@dataclass(frozen=True)
class LeadTime:
    """One tag gitward committed; `applied_at` and `seconds_to_apply` are None until an object
    was applied from that commit."""

    policy: str
    repository: str
    tag: str
    first_seen: datetime
    commit_sha: str
    committed_at: datetime
    applied_at: datetime | None
    seconds_to_commit: int
    seconds_to_apply: int | None


def lead_times(store: Store, *, policy: str | None = None, limit: int = 1000) -> tuple[LeadTime, ...]:
    """The most recent `limit` committed tags (of one policy when given), oldest first."""
    query = select(_VIEW)
    if policy is not None:
        query = query.where(_VIEW.c.policy == policy)
    query = query.order_by(_VIEW.c.committed_at.desc(), _VIEW.c.tag).limit(limit)
    with transaction(store, "read") as session:
        rows = session.execute(query).all()
    return tuple(LeadTime(*row) for row in reversed(rows))
