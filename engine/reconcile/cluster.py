"""Sync one Kustomization's rendered objects to the cluster: apply, prune, wait for health.

Per stage (definitions, classes, resources): read each live object, dry-run its apply, and
decide; if any object of the stage is refused, nothing of the stage is written and the sync
fails naming every refused object. Otherwise only objects that differ are applied (an
unchanged object costs no write), the inventory records them, and a definitions or classes
stage is waited on before the next. Then objects that left the source are pruned, and the
health checks run. Writes are recorded in `actions`; a sync that changed or failed something
records an event.
"""

from __future__ import annotations


import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.act.cluster import apply_object, delete_object
from engine.errors import GitwardError
from engine.evaluate.apply import (
    NAME_LABEL,
    NAMESPACE_LABEL,
    ApiError,
    Change,
    ManifestError,
    ObjectAction,
    Stage,
    checksum,
    cluster_scoped,
    decide,
    describe,
    prepare,
    prune_decision,
    skip_reason,
    stale,
    stages,
)
from engine.evaluate.health import assess, health_targets
from engine.model import ClusterObject, HealthCheck, Kustomization, Manifest, ObjectId
from engine.observe.cluster import (
    ClusterClient,
    HealthReport,
    Kinds,
    dry_run_apply,
    is_namespaced,
    list_labelled,
    read_object,
    wait_gone,
    wait_healthy,
)
from engine.store import inventory
from engine.store.actions import finish_action, start_action
from engine.store.db import Store
from engine.store.inventory import SUCCEEDED, applied_revision
from engine.store.queries import Event, EventSeverity, record_event


class SyncError(GitwardError):
    """A sync that could not finish: refused objects, failed writes, definitions never ready."""


@dataclass(frozen=True)
class SyncResult:
    """What one sync did: each desired object's outcome (in apply order), each stale object's,
    the health of what it waited for, and the error that stopped it, if any."""

    kustomization: str
    revision: str
    applied: tuple[ObjectAction, ...] = ()
    pruned: tuple[ObjectAction, ...] = ()
    health: tuple[HealthReport, ...] = ()
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return all(report.health.ready for report in self.health)

    @property
    def ok(self) -> bool:
        return self.error is None and self.healthy

    @property
    def changes(self) -> tuple[ObjectAction, ...]:
        """Objects written or deleted (what Flux's change log lists)."""
        return tuple(a for a in (*self.applied, *self.pruned)
                     if a.change.writes and a.reason != _ALREADY_GONE)

    def summary(self) -> str:
        """Flux-style: one line per change, then the failure or the unhealthy objects."""
        lines = [str(a) for a in self.changes]
        if self.error:
            lines.append(self.error)
        lines.extend(f"health check failed: {r}" for r in self.health if not r.health.ready)
        return "\n".join(lines) or f"applied revision {self.revision}: no changes"

    def to_json(self) -> dict[str, object]:
        return {"kustomization": self.kustomization, "revision": self.revision, "ok": self.ok,
                "error": self.error, "applied": [a.to_json() for a in self.applied],
                "pruned": [a.to_json() for a in self.pruned],
                "health": [r.to_json() for r in self.health]}


_ALREADY_GONE = "already gone"

CONCURRENCY = 4
"""Objects read and dry-run at once, as Flux's `--concurrent-ssa` default; writes stay in order."""


@dataclass
class _Sync:
    store: Store
    kustomization: Kustomization
    revision: str
    client: ClusterClient
    now: datetime
    poll_interval: float
    plan_id: str
    pool: Executor
    kinds: Kinds

    @property
    def ref(self) -> str:
        return self.kustomization.key.ref

    @property
    def timeout(self) -> float:
        return self.kustomization.effective_timeout.total_seconds()


def sync_kustomization(store: Store, kustomization: Kustomization, manifests: Sequence[Manifest],
                       revision: str, *, client: ClusterClient, now: datetime,
                       poll_interval: float = 2.0, plan_id: str | None = None) -> SyncResult:
    """Apply a Kustomization's rendered objects at `revision`, prune what left, check health.

    Failures of the cluster or of the objects end in a SyncResult with `error` set (and an
    event), never an exception; `poll_interval` is the seconds between readiness polls.
    `plan_id` groups the recorded actions (None: a random one).
    """
    with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="gitward-sync") as pool:
        return _run(_Sync(store, kustomization, revision, client, now, poll_interval,
                          plan_id or uuid.uuid4().hex[:12], pool, Kinds(client)), manifests)


def _run(sync: _Sync, manifests: Sequence[Manifest]) -> SyncResult:
    kustomization, client, revision = sync.kustomization, sync.client, sync.revision
    applied: list[ObjectAction] = []
    pruned: tuple[ObjectAction, ...] = ()
    health: tuple[HealthReport, ...] = ()
    error: str | None = None
    try:
        known = {e.object: e for e in inventory.list_inventory(sync.store, sync.ref)}
        desired: list[Manifest] = []
        for stage in stages(prepare(manifests, kustomization)):
            applied.extend(_apply_stage(sync, stage, known, desired))
        pruned = _prune(sync, known.values(), [m.id for m in desired])
        targets = health_targets(kustomization, desired)
        if targets:
            health = wait_healthy(client, targets, timeout=sync.timeout, interval=sync.poll_interval)
    except GitwardError as err:
        error = str(err)
    result = SyncResult(sync.ref, revision, tuple(applied), pruned, health, error)
    _record_event(sync, result)
    return result


@dataclass(frozen=True)
class _Planned:
    """One object's plan, or why it is refused; `immutable` when force must recreate it."""

    manifest: Manifest
    action: ObjectAction | None = None
    live: dict[str, Any] | None = None
    refused: str = ""
    immutable: ApiError | None = None


def _apply_stage(sync: _Sync, stage: Stage, known: dict[ObjectId, ClusterObject],
                 desired: list[Manifest]) -> list[ObjectAction]:
    """Dry-run every object of the stage, then write those that differ; all or nothing.

    Reads and dry-runs run on the sync's pool; results keep the stage's order."""
    outcomes: list[_Planned | str] = []
    for manifest in stage.manifests:
        try:
            outcomes.append(_Planned(_scoped(sync, manifest)))
        except GitwardError as err:
            outcomes.append(str(err))
    todo = [o.manifest for o in outcomes if isinstance(o, _Planned)]
    listed = _list_owned(sync, todo)
    plans = iter(sync.pool.map(lambda m: _plan(sync, m, listed), todo))
    outcomes = [next(plans) if isinstance(o, _Planned) else o for o in outcomes]
    refused = [o if isinstance(o, str) else o.refused for o in outcomes
               if isinstance(o, str) or o.refused]
    if refused:
        raise SyncError(f"{stage.name} stage: nothing of it applied:\n  " + "\n  ".join(refused))
    made = [o for o in outcomes if isinstance(o, _Planned)]
    planned = [(o.manifest, o.action) for o in made if o.action is not None]
    desired.extend(m for m, _ in planned)
    for outcome in made:
        if outcome.immutable is not None:
            _delete_for_recreate(sync, outcome.manifest, outcome.immutable)
            dry_run_apply(sync.client, outcome.manifest, kinds=sync.kinds)
    _write(sync, stage, planned, known)
    if stage.wait:
        # an unchanged object already read as ready needs no second read
        _wait_stage(sync, stage, [o.manifest for o in made if o.action is not None
                                  and o.action.change is not Change.SKIP
                                  and not (o.action.change is Change.UNCHANGED and assess(o.live).ready)])
    return [a for _, a in planned]


def _list_owned(sync: _Sync, manifests: list[Manifest]) -> dict[ObjectId, dict[str, Any]]:
    """The live objects already labelled as this Kustomization's, one LIST per apiVersion, kind
    and namespace holding two objects or more (for one, a GET is as cheap)."""
    groups: dict[tuple[str, str, str], list[Manifest]] = {}
    for manifest in manifests:
        groups.setdefault((manifest.api_version, manifest.kind, manifest.namespace), []).append(manifest)
    owner = {NAME_LABEL: sync.kustomization.name, NAMESPACE_LABEL: sync.kustomization.namespace}
    shared = [key for key, members in groups.items() if len(members) > 1]
    answers = sync.pool.map(lambda key: list_labelled(sync.client, key[0], key[1], key[2], owner,
                                                      kinds=sync.kinds), shared)
    found: dict[ObjectId, dict[str, Any]] = {}
    for key, by_name in zip(shared, answers):
        for manifest in groups[key]:
            live = by_name.get(manifest.name)
            if live is not None:
                found[manifest.id] = live
    return found


def _plan(sync: _Sync, manifest: Manifest, listed: dict[ObjectId, dict[str, Any]]) -> _Planned:
    """Read (unless listed) and dry-run one object, and decide; runs on the sync's pool."""
    try:
        live = listed.get(manifest.id)
        if live is None:  # not labelled as ours yet (or relabelled): read it by name
            live = read_object(sync.client, manifest.api_version, manifest.kind, manifest.namespace,
                               manifest.name, kinds=sync.kinds)
        reason = skip_reason(manifest, live)
        if reason:
            return _Planned(manifest, ObjectAction(manifest.id, manifest.version, Change.SKIP,
                                                   origin=manifest.origin, reason=reason), live)
        try:
            merged = dry_run_apply(sync.client, manifest, kinds=sync.kinds)
        except ApiError as err:
            if not (err.immutable and live is not None and sync.kustomization.force):
                raise
            changed = ", ".join(err.fields) or "a field"
            return _Planned(manifest, ObjectAction(manifest.id, manifest.version, Change.RECREATE,
                                                   origin=manifest.origin,
                                                   reason=f"immutable {changed} changed"),
                            live, immutable=err)
        return _Planned(manifest, decide(manifest, live, merged), live)
    except GitwardError as err:
        return _Planned(manifest, refused=str(err))


def _scoped(sync: _Sync, manifest: Manifest) -> Manifest:
    if not is_namespaced(sync.client, manifest, kinds=sync.kinds):
        return cluster_scoped(manifest)
    if not manifest.namespace:
        raise ManifestError(f"{describe(manifest)}: {manifest.kind} is namespaced but the object names "
                            "no namespace; set metadata.namespace or the Kustomization's targetNamespace")
    return manifest


def _delete_for_recreate(sync: _Sync, manifest: Manifest, err: ApiError) -> None:
    if delete_object(sync.client.dynamic, manifest.api_version, manifest.kind, manifest.namespace,
                     manifest.name) and not wait_gone(
            sync.client, manifest.api_version, manifest.kind, manifest.namespace, manifest.name,
            timeout=sync.timeout, interval=sync.poll_interval):
        raise SyncError(f"{describe(manifest)}: deleted to recreate it (immutable {', '.join(err.fields)}), "
                        f"but it was still there after {sync.timeout:g}s")


def _write(sync: _Sync, stage: Stage, planned: list[tuple[Manifest, ObjectAction]],
           known: dict[ObjectId, ClusterObject]) -> None:
    """Apply what differs, recording the action and the inventory even when a write fails."""
    writes = [(m, a) for m, a in planned if a.change.writes]
    entries: list[ClusterObject] = []
    action_id = None
    if writes:
        action_id = start_action(sync.store, plan_id=sync.plan_id, type="apply",
                                 target=f"{Kustomization.KIND}/{sync.ref}",
                                 payload={"revision": sync.revision, "stage": stage.name,
                                          "objects": [a.to_json() for _, a in writes]}, now=sync.now)
    try:
        for manifest, action in planned:
            if action.change is Change.SKIP:
                continue
            if action.change.writes:
                apply_object(sync.client.dynamic, manifest)
            entry = _entry(sync, manifest, known.get(manifest.id), written=action.change.writes)
            if entry is not None:
                entries.append(entry)
                known[manifest.id] = entry
    except GitwardError as err:
        if action_id is not None:
            finish_action(sync.store, action_id, status="failed", now=sync.now, error=str(err))
        raise
    finally:
        inventory.record_applied(sync.store, entries)
    if action_id is not None:
        finish_action(sync.store, action_id, status="done", now=sync.now)


def _entry(sync: _Sync, manifest: Manifest, previous: ClusterObject | None, *,
           written: bool) -> ClusterObject | None:
    """The inventory row to write: always after a write; for an unchanged object only when the
    row is missing, pruned or out of date (so a no-op sync writes nothing)."""
    digest = checksum(manifest)
    if (not written and previous is not None and previous.pruned_at is None
            and (previous.checksum, previous.version) == (digest, manifest.version)):
        return None
    return ClusterObject(sync.ref, manifest.id, manifest.version, sync.revision, digest, sync.now)


def _wait_stage(sync: _Sync, stage: Stage, manifests: list[Manifest]) -> None:
    targets = [HealthCheck(m.api_version, m.kind, m.name, m.namespace) for m in manifests]
    if not targets:
        return
    reports = wait_healthy(sync.client, targets, timeout=sync.timeout, interval=sync.poll_interval)
    late = [str(r) for r in reports if not r.health.ready]
    if late:
        raise SyncError(f"{stage.name} stage: not ready after {sync.timeout:g}s, so nothing after it "
                        "was applied:\n  " + "\n  ".join(late))


def _prune(sync: _Sync, entries: Iterable[ClusterObject], desired: list[ObjectId]) -> tuple[ObjectAction, ...]:
    """Delete stale objects that are still ours; forget those left in the cluster."""
    stale_entries = stale(entries, desired)
    if not stale_entries:
        return ()
    decisions: list[ObjectAction] = []
    failures: list[str] = []
    for entry in stale_entries:
        live = read_object(sync.client, entry.api_version, entry.object.kind, entry.object.namespace,
                           entry.object.name, kinds=sync.kinds)
        decisions.append(prune_decision(sync.kustomization, entry, live))
    deletes = [d for d in decisions if d.change is Change.PRUNE and d.reason != _ALREADY_GONE]
    action_id = None
    if deletes:
        action_id = start_action(sync.store, plan_id=sync.plan_id, type="prune",
                                 target=f"{Kustomization.KIND}/{sync.ref}",
                                 payload={"revision": sync.revision,
                                          "objects": [d.to_json() for d in deletes]}, now=sync.now)
    gone: list[ObjectId] = []
    for decision in decisions:
        if decision.change is not Change.PRUNE:
            continue
        if decision.reason != _ALREADY_GONE:
            obj = decision.object
            try:
                delete_object(sync.client.dynamic, decision.api_version, obj.kind, obj.namespace, obj.name)
            except ApiError as err:
                failures.append(str(err))
                continue
        gone.append(decision.object)
    inventory.record_pruned(sync.store, sync.ref, gone, sync.now)
    inventory.release(sync.store, sync.ref, [d.object for d in decisions if d.change is Change.KEEP])
    if action_id is not None:
        finish_action(sync.store, action_id, status="failed" if failures else "done", now=sync.now,
                      error="\n".join(failures) or None)
    if failures:
        raise SyncError("prune failed:\n  " + "\n  ".join(failures))
    return tuple(decisions)


def _record_event(sync: _Sync, result: SyncResult) -> None:
    if result.error is not None:
        severity, reason, message = EventSeverity.ERROR, "ReconciliationFailed", result.summary()
    elif not result.healthy:
        severity, reason, message = EventSeverity.ERROR, "HealthCheckFailed", result.summary()
    elif result.changes or applied_revision(sync.store, sync.ref) != sync.revision:
        severity, reason, message = EventSeverity.INFO, SUCCEEDED, result.summary()
    else:
        return
    record_event(sync.store, Event(time=sync.now, object_kind=Kustomization.KIND, object_name=sync.ref,
                                   severity=severity, reason=reason,
                                   message=f"revision {sync.revision}: {message}"))
