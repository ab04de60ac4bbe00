"""What `gitward get` shows: each rule object with its state from the recorded facts.

Flux keeps this in each object's `status`; gitward derives it from the store, so the same
answer is one SQL query away. Readiness reads True, False or Unknown, as Flux's Ready condition.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from engine.model import (
    ActionStatus,
    FluxObject,
    GitSource,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    OCISource,
    Rule,
    ScanStatus,
)
from engine.store import decisions as policy_decisions, queries
from engine.store.actions import ActionRecord, list_actions
from engine.store.artifacts import latest_oci_revision
from engine.store.inventory import applied_revision, list_inventory
from engine.store.db import Store
from engine.store.reconciles import last_reconcile


@dataclass(frozen=True)
class ObjectStatus:
    """One row of `gitward get`: Flux's columns plus the facts behind them."""

    kind: str
    namespace: str
    name: str
    ready: str
    message: str
    suspended: bool
    revision: str = ""
    last: datetime | None = None
    tags: int | None = None
    latest: str = ""
    previous: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "ready": self.ready,
            "message": self.message,
            "suspended": self.suspended,
            "revision": self.revision or None,
            "last": self.last.isoformat() if self.last else None,
            "tags": self.tags,
            "latest": self.latest or None,
            "previous": self.previous or None,
        }


def short_revision(revision: str) -> str:
    """`main@sha1:<40 hex>` -> `main@sha1:<12 hex>`, as wide as a table allows."""
    ref, sep, sha = revision.rpartition(":")
    return f"{ref}{sep}{sha[:12]}" if sep else revision


def object_status(store: Store | None, rule: Rule) -> ObjectStatus:
    """The status of one rule object; with no store every object is Unknown."""
    name = rule.key.ref
    if isinstance(rule, FluxObject):
        return ObjectStatus(rule.KIND, rule.key.namespace, rule.name, "Unknown",
                            "not reconciled by gitward", False)
    suspended = bool(getattr(rule, "suspend", False)) or (
        store is not None and queries.is_suspended(store, rule.KIND, name)
    )
    base = ObjectStatus(rule.KIND, rule.key.namespace, rule.name, "Unknown", "", suspended)
    if store is None:
        return replace(base, message="no state store")
    if isinstance(rule, GitSource):
        return _source(store, rule, base)
    if isinstance(rule, OCISource):
        return _oci_source(store, rule, base)
    if isinstance(rule, ImageRepository):
        return _repository(store, rule, base)
    if isinstance(rule, ImagePolicy):
        return _policy(store, rule, base)
    if isinstance(rule, ImageUpdate):
        return _update(store, rule, base)
    if isinstance(rule, Kustomization):
        return _kustomization(store, rule, base)
    return base


def _source(store: Store, rule: GitSource, base: ObjectStatus) -> ObjectStatus:
    rev = queries.latest_git_revision(store, rule.key.ref)
    if rev is None:
        return replace(base, message="not fetched yet")
    revision = f"{rev.branch}@sha1:{rev.sha}"
    return replace(base, ready="True", message=f"stored artifact for revision '{short_revision(revision)}'",
                        revision=revision, last=rev.fetched_at)


def _oci_source(store: Store, rule: OCISource, base: ObjectStatus) -> ObjectStatus:
    """The artifact last pulled; not Ready when the latest event of the source is a failed pull."""
    rev = latest_oci_revision(store, rule.key.ref)
    events = queries.list_events(store, object_kind=rule.KIND, object_name=rule.key.ref, limit=1)
    failed = events[-1] if events and events[-1].severity is queries.EventSeverity.ERROR else None
    revision = rev.revision if rev else ""
    if failed is not None:
        return replace(base, ready="False", message=failed.message, revision=revision,
                       last=failed.time)
    if rev is None:
        return replace(base, message="not pulled yet")
    return replace(base, ready="True", revision=revision, last=rev.fetched_at,
                   message=f"stored artifact for revision '{short_revision(revision)}'")


def _repository(store: Store, rule: ImageRepository, base: ObjectStatus) -> ObjectStatus:
    scan = queries.latest_scan(store, rule.key.ref)
    if scan is None:
        return replace(base, message="not scanned yet")
    if scan.status is ScanStatus.FAILED:
        return replace(base, ready="False", message=f"scan failed: {scan.error}",
                            last=scan.finished_at)
    return replace(base, ready="True", message=f"successful scan: found {scan.tag_count} tags",
                        last=scan.finished_at, tags=scan.tag_count)


def _policy(store: Store, rule: ImagePolicy, base: ObjectStatus) -> ObjectStatus:
    decision = policy_decisions.latest_decision(store, rule.key.ref)
    if decision is None:
        return replace(base, message="not evaluated yet")
    kept = (decision if decision.selected_tag is not None
            else policy_decisions.latest_selection(store, rule.key.ref))
    latest = kept.selected_tag or "" if kept else ""
    previous = (policy_decisions.previous_selection(store, rule.key.ref, latest) or "") if latest else ""
    if decision.selected_tag is None:
        return replace(base, ready="False", message=decision.error or "no tag selected",
                       last=decision.decided_at, latest=latest, previous=previous)
    return replace(base, ready="True", message=f"latest tag resolved to {latest}",
                   last=decision.decided_at, latest=latest, previous=previous)


def _update(store: Store, rule: ImageUpdate, base: ObjectStatus) -> ObjectStatus:
    """The automation's last run (`reconciles`, written by `gitward run` even when it found
    nothing to do), with its last commit action (`actions`) when that says more."""
    ref = rule.key.ref
    last = next((a for a in list_actions(store, limit=500)
                 if a.type == "commit" and ref in a.payload.get("automations", [])), None)
    run = last_reconcile(store, rule.key)
    if last is None and run is None:
        return replace(base, message="not run yet")
    when = (last.finished_at or last.created_at) if last else None
    if run is not None and (when is None or run.finished_at >= when):
        text = run.message or "reconciled"
        if last is not None and when is not None and last.status is ActionStatus.DONE and _commit(last) not in text:
            text += f"; last pushed commit '{_commit(last)}' at {when:%Y-%m-%dT%H:%M:%SZ}"
        return replace(base, ready="True" if run.outcome == "ok" else "False", last=run.finished_at,
                       message=f"{text} ({run.runs} run{'s' * (run.runs != 1)})")
    assert last is not None and when is not None
    if last.status is ActionStatus.DONE:
        return replace(base, ready="True", last=when,
                       message=f"pushed commit '{_commit(last)}' to branch "
                               f"'{last.payload.get('branch')}'")
    if last.status is ActionStatus.SKIPPED:
        return replace(base, ready="True", last=when, message=last.error or "nothing to commit")
    return replace(base, ready="False", last=when, message=last.error or last.status)


def _commit(action: ActionRecord) -> str:
    return str(action.payload.get("commit") or "")[:7]


def _kustomization(store: Store, rule: Kustomization, base: ObjectStatus) -> ObjectStatus:
    """Readiness from the last sync event; the revision of the last successful sync."""
    ref = rule.key.ref
    events = queries.list_events(store, object_kind=Kustomization.KIND, object_name=ref, limit=1)
    revision = applied_revision(store, ref)
    if events and events[-1].severity is queries.EventSeverity.ERROR:
        return replace(base, ready="False", message=events[-1].message.splitlines()[0],
                       revision=revision, last=events[-1].time)
    if not revision:
        return replace(base, message="not reconciled yet")
    count = len(list_inventory(store, ref))
    return replace(base, ready="True", revision=revision, last=events[-1].time if events else None,
                   message=f"Applied revision: {short_revision(revision)} ({count} objects)")
