"""Reconcile requests: how `gitward reconcile` reaches a running `gitward run` through the store.

Flux annotates the object (`reconcile.fluxcd.io/requestedAt`) and its controller notices; here
the store is the meeting point, so the daemon may run on another machine. The CLI writes a row
and polls it; a daemon hurries the object and, after reconciling it, answers every request made
before that reconcile started. A request made while the object is being reconciled waits for the
next reconcile, so its answer always reflects the state at or after the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from engine.model import ObjectKey
from engine.store.db import Store
from engine.store.queries import transaction
from engine.store.schema import ReconcileRequestRow


@dataclass(frozen=True)
class ReconcileRequest:
    id: int
    key: ObjectKey
    requested_at: datetime
    requested_by: str
    finished_at: datetime | None = None
    handled_by: str | None = None
    outcome: str | None = None
    revision: str | None = None
    message: str | None = None


def _request(row: ReconcileRequestRow) -> ReconcileRequest:
    namespace, _, name = row.object_name.partition("/")
    return ReconcileRequest(row.id, ObjectKey(row.object_kind, namespace, name), row.requested_at,
                            row.requested_by, row.finished_at, row.handled_by, row.outcome,
                            row.revision, row.message)


def request_reconcile(store: Store, key: ObjectKey, requested_by: str,
                      now: datetime) -> ReconcileRequest:
    """Queue a request for `key`; a daemon answers it after its next reconcile of `key`."""
    with transaction(store) as session:
        row = ReconcileRequestRow(object_kind=key.kind, object_name=key.ref, requested_at=now,
                                  requested_by=requested_by)
        session.add(row)
        session.flush()
        return _request(row)


def get_request(store: Store, request_id: int) -> ReconcileRequest | None:
    with transaction(store, "read") as session:
        row = session.get(ReconcileRequestRow, request_id)
        return _request(row) if row is not None else None


def pending_requests(store: Store) -> tuple[ReconcileRequest, ...]:
    """Requests no daemon has answered yet, oldest first."""
    with transaction(store, "read") as session:
        rows = session.scalars(select(ReconcileRequestRow)
                               .where(ReconcileRequestRow.finished_at.is_(None))
                               .order_by(ReconcileRequestRow.id))
        return tuple(_request(row) for row in rows)


def answer_requests(store: Store, key: ObjectKey, *, made_before: datetime, handled_by: str,
                    outcome: str, revision: str, message: str, now: datetime) -> int:
    """Answer the open requests for `key` made up to `made_before`; returns how many."""
    with transaction(store) as session:
        done = session.execute(
            update(ReconcileRequestRow)
            .where(ReconcileRequestRow.finished_at.is_(None),
                   ReconcileRequestRow.object_kind == key.kind,
                   ReconcileRequestRow.object_name == key.ref,
                   ReconcileRequestRow.requested_at <= made_before)
            .values(finished_at=now, handled_by=handled_by, outcome=outcome,
                    revision=revision or None, message=message or None)
            .returning(ReconcileRequestRow.id))
        return len(done.all())
