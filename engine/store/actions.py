"""The `actions` table: every action gitward planned and what became of it.

A row is written `planned` before the executor starts and finished `done`, `failed` or
`skipped` after, each in its own transaction, so an interrupted run leaves a `planned` row that
says exactly what was under way, until the next writer of that target finishes it as failed
(`finish_interrupted`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from engine.model import ActionStatus
from engine.store.db import Store
from engine.store.queries import transaction
from engine.store.schema import ActionRow


@dataclass(frozen=True)
class ActionRecord:
    id: int
    plan_id: str
    type: str
    target: str
    payload: dict[str, Any]
    status: ActionStatus
    error: str | None
    created_at: datetime
    finished_at: datetime | None


def _record(row: ActionRow) -> ActionRecord:
    return ActionRecord(row.id, row.plan_id, row.type, row.target, dict(row.payload), ActionStatus(row.status),
                        row.error, row.created_at, row.finished_at)


def start_action(store: Store, *, plan_id: str, type: str, target: str, payload: dict[str, Any],
                 now: datetime) -> int:
    """Record an action as planned; returns its id."""
    with transaction(store) as session:
        row = ActionRow(plan_id=plan_id, type=type, target=target, payload=payload,
                        status=ActionStatus.PLANNED, error=None, created_at=now, finished_at=None)
        session.add(row)
        session.flush()
        return row.id


def finish_action(store: Store, action_id: int, *, status: ActionStatus, now: datetime,
                  error: str | None = None, payload: dict[str, Any] | None = None) -> None:
    """Mark an action done, failed or skipped (and add what the executor learned)."""
    with transaction(store) as session:
        row = session.get(ActionRow, action_id)
        if row is None:
            raise KeyError(action_id)
        row.status, row.error, row.finished_at = status, error, now
        if payload:
            row.payload = {**row.payload, **payload}


def list_actions(store: Store, *, limit: int = 50, types: tuple[str, ...] = (),
                 target: str | None = None) -> tuple[ActionRecord, ...]:
    """The most recent actions, newest first; of these `types` and this `target` when given."""
    query = select(ActionRow)
    if types:
        query = query.where(ActionRow.type.in_(types))
    if target is not None:
        query = query.where(ActionRow.target == target)
    with transaction(store, "read") as session:
        rows = session.scalars(query.order_by(ActionRow.id.desc()).limit(limit))
        return tuple(_record(r) for r in rows)


INTERRUPTED = "interrupted: the process that planned it ended before finishing it"


def finish_interrupted(store: Store, target: str, *, before: datetime, now: datetime) -> int:
    """Finish as failed the actions on `target` still `planned` since before `before`: their
    process was killed mid-way. The caller holds the target's lease, so no live writer is at
    them; `before` (a lease's life ago) spares a writer that planned and has yet to wait for
    it. Returns how many."""
    with transaction(store) as session:
        done = session.execute(
            update(ActionRow)
            .where(ActionRow.target == target, ActionRow.status == ActionStatus.PLANNED,
                   ActionRow.created_at < before)
            .values(status=ActionStatus.FAILED, error=INTERRUPTED, finished_at=now))
        return int(done.rowcount or 0)
