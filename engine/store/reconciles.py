"""Each object's latest reconcile: a heartbeat, so an object that ran and changed nothing is
seen to have run.

Flux keeps `status.lastHandledReconcileAt` and a Ready condition on the object; gitward keeps one
row per object in `reconciles`, updated in place by every reconcile of `gitward run` (a row per
interval would record repetitions, not changes). `since` moves only when the outcome or the
message changes, so "ready since" reads straight from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from engine.model import ObjectKey
from engine.store.db import Store, database_error
from engine.store.queries import transaction
from engine.store.schema import ReconcileRow


@dataclass(frozen=True)
class LastReconcile:
    """An object's latest reconcile: when it finished, `ok` or `failed`, what it reached and
    said, since when it has said so, and how many reconciles it has had."""

    key: ObjectKey
    finished_at: datetime
    outcome: str
    revision: str
    message: str
    since: datetime
    runs: int


def _last(row: ReconcileRow) -> LastReconcile:
    namespace, _, name = row.object_name.partition("/")
    return LastReconcile(ObjectKey(row.object_kind, namespace, name), row.finished_at, row.outcome,
                         row.revision, row.message, row.since, row.runs)


def record_reconcile(store: Store, key: ObjectKey, *, outcome: str, revision: str, message: str,
                     at: datetime) -> LastReconcile:
    """Record that `key` was reconciled at `at` (one writer per object: its lease)."""
    with transaction(store) as session:
        row = session.get(ReconcileRow, (key.kind, key.ref))
        if row is None:
            row = ReconcileRow(object_kind=key.kind, object_name=key.ref, finished_at=at,
                               outcome=outcome, revision=revision, message=message, since=at,
                               runs=0)
            session.add(row)
        elif (row.outcome, row.message) != (outcome, message):
            row.since = at
        row.finished_at, row.outcome, row.revision, row.message = at, outcome, revision, message
        row.runs += 1
        session.flush()
        return _last(row)


def last_reconcile(store: Store, key: ObjectKey) -> LastReconcile | None:
    """The object's latest reconcile; None when it has had none, or when the store predates
    the table (read-only commands do not upgrade it)."""
    try:
        if not inspect(store.engine).has_table(ReconcileRow.__tablename__):
            return None
    except SQLAlchemyError as err:
        raise database_error(store.url, "read", err) from err
    with transaction(store, "read") as session:
        row = session.get(ReconcileRow, (key.kind, key.ref))
        return _last(row) if row is not None else None
