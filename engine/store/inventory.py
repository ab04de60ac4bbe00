"""A Kustomization's inventory in `cluster_objects`: what it applied, from which revision, when.

An object's row is kept after gitward prunes it (`pruned_at` set), so users can see what was
removed and when; applying the object again clears `pruned_at`. An object that leaves the
source but stays in the cluster (prune off, `prune: disabled`, relabelled) is released: its
row is deleted, as Flux drops it from `status.inventory`.
"""

from __future__ import annotations

import re

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.model import ClusterObject, Kustomization, ObjectId
from engine.store.db import Store
from engine.store.queries import list_events, transaction
from engine.store.schema import ClusterObjectRow


def _entry(row: ClusterObjectRow) -> ClusterObject:
    return ClusterObject(
        kustomization=row.kustomization,
        object=ObjectId(row.api_group, row.kind, row.namespace, row.name),
        version=row.version,
        revision=row.revision,
        checksum=row.checksum,
        applied_at=row.applied_at,
        pruned_at=row.pruned_at,
    )


def _rows(session: Session, kustomization: str) -> dict[ObjectId, ClusterObjectRow]:
    rows = session.scalars(select(ClusterObjectRow).where(ClusterObjectRow.kustomization == kustomization))
    return {ObjectId(r.api_group, r.kind, r.namespace, r.name): r for r in rows}


def list_inventory(store: Store, kustomization: str, *, include_pruned: bool = False) -> tuple[ClusterObject, ...]:
    """The objects a Kustomization (`namespace/name`) manages, ordered by identity."""
    with transaction(store, "read") as session:
        query = select(ClusterObjectRow).where(ClusterObjectRow.kustomization == kustomization)
        if not include_pruned:
            query = query.where(ClusterObjectRow.pruned_at.is_(None))
        rows = session.scalars(query)
        return tuple(sorted((_entry(r) for r in rows), key=lambda e: e.object))


def record_applied(store: Store, entries: Sequence[ClusterObject]) -> None:
    """Insert or update each entry's row (one transaction); a pruned row becomes managed again."""
    if not entries:
        return
    with transaction(store) as session:
        for kustomization in dict.fromkeys(e.kustomization for e in entries):
            rows = _rows(session, kustomization)
            for entry in (e for e in entries if e.kustomization == kustomization):
                row = rows.get(entry.object)
                if row is None:
                    row = ClusterObjectRow(kustomization=kustomization, api_group=entry.object.group,
                                           kind=entry.object.kind, namespace=entry.object.namespace,
                                           name=entry.object.name)
                    session.add(row)
                    rows[entry.object] = row
                row.version, row.revision, row.checksum = entry.version, entry.revision, entry.checksum
                row.applied_at, row.pruned_at = entry.applied_at, None


def record_pruned(store: Store, kustomization: str, objects: Iterable[ObjectId], now: datetime) -> None:
    """Mark objects as deleted from the cluster at `now`."""
    wanted = set(objects)
    if not wanted:
        return
    with transaction(store) as session:
        for obj, row in _rows(session, kustomization).items():
            if obj in wanted and row.pruned_at is None:
                row.pruned_at = now


def release(store: Store, kustomization: str, objects: Iterable[ObjectId]) -> None:
    """Forget objects the Kustomization no longer manages but left in the cluster."""
    wanted = set(objects)
    if not wanted:
        return
    with transaction(store) as session:
        ids = [row.id for obj, row in _rows(session, kustomization).items() if obj in wanted]
        if ids:
            session.execute(delete(ClusterObjectRow).where(ClusterObjectRow.id.in_(ids)))


SUCCEEDED = "ReconciliationSucceeded"
_REVISION = re.compile(r"^revision (\S+): ")


def applied_revision(store: Store, kustomization: str) -> str:
    """The revision of the Kustomization's last successful sync ("" before the first).

    A success event is recorded whenever a sync changes objects or reaches a new revision, so
    the latest one names the revision applied now (Flux's status.lastAppliedRevision).
    """
    for event in reversed(list_events(store, object_kind=Kustomization.KIND,
                                      object_name=kustomization, limit=50)):
        if event.reason == SUCCEEDED:
            match = _REVISION.match(event.message)
            return match.group(1) if match else ""
    return ""
