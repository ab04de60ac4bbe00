"""Carry out a Kustomization's ApplyPlan: the only code that writes to the cluster.

`sync_kustomization` runs the one observe-and-decide loop (engine/reconcile/clusterplan.py)
with this executor as its stage step: if any object of a stage is refused, nothing of the stage
is written and the sync fails naming every refused object. Otherwise only objects that differ
are applied (an unchanged object costs no write), an object whose immutable field changed under
`force` is deleted and created again, the inventory records them, and a definitions or classes
stage is waited on before the next is observed. Then the plan's prunes are carried out and its
health checks run. Writes are recorded in `actions` under the plan's id; a sync that changed or
failed something records an event.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from engine.act.cluster import apply_object, delete_object
from engine.errors import GitwardError
from engine.evaluate.apply import Change, ObjectAction, checksum, describe
from engine.evaluate.applyplan import ApplyPlan, PlannedObject, StagePlan, deletes
from engine.kubeapi import ApiError
from engine.model import ActionStatus, ClusterObject, Kustomization, Manifest, ObjectId
from engine.observe.cluster import ClusterClient, HealthReport, dry_run_apply, wait_gone, wait_healthy
from engine.reconcile.clusterplan import plan_kustomization
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
                     if a.writes)

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


def sync_kustomization(store: Store, kustomization: Kustomization, manifests: Sequence[Manifest],
                       revision: str, *, client: ClusterClient, now: datetime,
                       poll_interval: float = 2.0, plan_id: str | None = None) -> SyncResult:
    """Apply a Kustomization's rendered objects at `revision`, prune what left, check health.

    Failures of the cluster or of the objects end in a SyncResult with `error` set (and an
    event), never an exception; `poll_interval` is the seconds between readiness polls.
    `plan_id` names the plan its actions are recorded under (None: a random one).
    """
    run = Executor(store, kustomization, revision, client, now, poll_interval, plan_id or uuid.uuid4().hex[:12])
    pruned: tuple[ObjectAction, ...] = ()
    health: tuple[HealthReport, ...] = ()
    error: str | None = None
    try:
        known = inventory.list_inventory(store, run.ref)
        run.known = {e.object: e for e in known}
        plan = plan_kustomization(client, kustomization, manifests, known, plan_id=run.plan_id,
                                  carry_out=run.stage)
        pruned = run.prune(plan)
        if plan.health:
            health = wait_healthy(client, plan.health, timeout=run.timeout, interval=poll_interval)
    except GitwardError as err:
        error = str(err)
    result = SyncResult(run.ref, revision, tuple(run.applied), pruned, health, error)
    _record_event(run, result)
    return result


@dataclass
class Executor:
    """Writes one plan's stages and prunes, recording actions and the inventory as it goes."""

    store: Store
    kustomization: Kustomization
    revision: str
    client: ClusterClient
    now: datetime
    poll_interval: float
    plan_id: str
    known: dict[ObjectId, ClusterObject] = field(default_factory=dict)
    applied: list[ObjectAction] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return self.kustomization.key.ref

    @property
    def timeout(self) -> float:
        return self.kustomization.effective_timeout.total_seconds()

    def stage(self, plan: StagePlan) -> None:
        """Write what differs in one stage, all or nothing, and wait for it if the stage says so."""
        if plan.refused:
            raise SyncError(f"{plan.name} stage: nothing of it applied:\n  " + "\n  ".join(plan.refused))
        for planned in plan.objects:
            if planned.action.change is Change.RECREATE:
                self._delete_for_recreate(planned)
                dry_run_apply(self.client, planned.manifest)
        self._write(plan)
        self._wait(plan)
        self.applied.extend(plan.actions)

    def prune(self, plan: ApplyPlan) -> tuple[ObjectAction, ...]:
        """Delete stale objects that are still ours; forget those left in the cluster."""
        if plan.refused:
            raise SyncError("\n".join(plan.refused))
        if not plan.prune:
            return ()
        action_id = None
        if plan.deletes:
            action_id = start_action(self.store, plan_id=self.plan_id, type="prune",
                                     target=f"{Kustomization.KIND}/{self.ref}",
                                     payload={"revision": self.revision,
                                              "objects": [d.to_json() for d in plan.deletes]}, now=self.now)
        gone: list[ObjectId] = []
        failures: list[str] = []
        for decision in plan.prune:
            if decision.change is not Change.PRUNE:
                continue
            if deletes(decision):
                obj = decision.object
                try:
                    delete_object(self.client.dynamic, decision.api_version, obj.kind, obj.namespace, obj.name)
                except ApiError as err:
                    failures.append(str(err))
                    continue
            gone.append(decision.object)
        inventory.record_pruned(self.store, self.ref, gone, self.now)
        inventory.release(self.store, self.ref, [d.object for d in plan.prune if d.change is Change.KEEP])
        if action_id is not None:
            finish_action(self.store, action_id, status=ActionStatus.FAILED if failures else ActionStatus.DONE, now=self.now,
                          error="\n".join(failures) or None)
        if failures:
            raise SyncError("prune failed:\n  " + "\n  ".join(failures))
        return plan.prune

    def _delete_for_recreate(self, planned: PlannedObject) -> None:
        manifest = planned.manifest
        if delete_object(self.client.dynamic, manifest.api_version, manifest.kind, manifest.namespace,
                         manifest.name) and not wait_gone(
                self.client, manifest.api_version, manifest.kind, manifest.namespace, manifest.name,
                timeout=self.timeout, interval=self.poll_interval):
            raise SyncError(f"{describe(manifest)}: deleted to recreate it (immutable "
                            f"{', '.join(planned.immutable)}), but it was still there after {self.timeout:g}s")

    def _write(self, plan: StagePlan) -> None:
        """Apply what differs, recording the action and the inventory even when a write fails."""
        writes = [p.action for p in plan.objects if p.action.change.writes]
        entries: list[ClusterObject] = []
        action_id = None
        if writes:
            action_id = start_action(self.store, plan_id=self.plan_id, type="apply",
                                     target=f"{Kustomization.KIND}/{self.ref}",
                                     payload={"revision": self.revision, "stage": plan.name,
                                              "objects": [a.to_json() for a in writes]}, now=self.now)
        try:
            for planned in plan.objects:
                manifest, action = planned.manifest, planned.action
                if action.change is Change.SKIP:
                    continue
                if action.change.writes:
                    apply_object(self.client.dynamic, manifest)
                entry = self._entry(manifest, self.known.get(manifest.id), written=action.change.writes)
                if entry is not None:
                    entries.append(entry)
                    self.known[manifest.id] = entry
        except GitwardError as err:
            if action_id is not None:
                finish_action(self.store, action_id, status=ActionStatus.FAILED, now=self.now, error=str(err))
            raise
        finally:
            inventory.record_applied(self.store, entries)
        if action_id is not None:
            finish_action(self.store, action_id, status=ActionStatus.DONE, now=self.now)

    def _entry(self, manifest: Manifest, previous: ClusterObject | None, *,
               written: bool) -> ClusterObject | None:
        """The inventory row to write: always after a write; for an unchanged object only when the
        row is missing, pruned or out of date (so a no-op sync writes nothing)."""
        digest = checksum(manifest)
        if (not written and previous is not None and previous.pruned_at is None
                and (previous.checksum, previous.version) == (digest, manifest.version)):
            return None
        return ClusterObject(self.ref, manifest.id, manifest.version, self.revision, digest, self.now)

    def _wait(self, plan: StagePlan) -> None:
        if not plan.wait_for:
            return
        reports = wait_healthy(self.client, plan.wait_for, timeout=self.timeout, interval=self.poll_interval)
        late = [str(r) for r in reports if not r.health.ready]
        if late:
            raise SyncError(f"{plan.name} stage: not ready after {self.timeout:g}s, so nothing after it "
                            "was applied:\n  " + "\n  ".join(late))


def _record_event(sync: Executor, result: SyncResult) -> None:
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
