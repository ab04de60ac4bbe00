"""A Kustomization's apply plan: what a sync will do to each object, decided from facts.

Pure: the observer (engine/observe/clusterfacts.py) reads the cluster and hands in plain data,
the live object, the server-side dry-run's answer or refusal, the live state of each recorded
object the rendering dropped, and this module turns them into ObjectActions in Flux's stage order
(create, update with its field diff, unchanged, recreate for an immutable field under `force`,
skip with the reason, prune or keep), with the health checks a sync waits for. The same plan is
what `diff kustomization` prints and what the executor (engine/reconcile/cluster.py) carries out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.evaluate.apply import (
    Change,
    ObjectAction,
    Stage,
    checksum,
    cluster_scoped,
    decide,
    prepare,
    prune_decision,
    skip_reason,
    stages,
    stale,
)
from engine.evaluate.health import assess, health_targets
from engine.model import ClusterObject, HealthCheck, Kustomization, Manifest, ObjectId


@dataclass(frozen=True)
class ObjectFacts:
    """What the observer learned about one rendered object.

    `manifest` is the object as the server names it (cluster-scoped kinds lose their namespace).
    `merged` is the dry-run's result; `refusal` why the dry-run (or a read) failed, with
    `immutable` naming the fields when the server refused to change an immutable one. `pending`
    says the object's kind or namespace comes from an earlier stage not yet applied, so the
    server could not be asked: it will be created.
    """

    manifest: Manifest
    live: Mapping[str, Any] | None = None
    merged: Mapping[str, Any] | None = None
    refusal: str = ""
    immutable: tuple[str, ...] | None = None
    pending: bool = False


@dataclass(frozen=True)
class PlannedObject:
    """One object's action with the body the executor writes (`immutable`: fields to recreate for)."""

    manifest: Manifest
    action: ObjectAction
    immutable: tuple[str, ...] = ()


@dataclass(frozen=True)
class StagePlan:
    """One stage's actions in apply order; `refused` objects stop the stage (all or nothing);
    `wait_for` are the objects the next stage waits on (empty unless the stage waits)."""

    name: str
    objects: tuple[PlannedObject, ...] = ()
    refused: tuple[str, ...] = ()
    wait_for: tuple[HealthCheck, ...] = ()

    @property
    def actions(self) -> tuple[ObjectAction, ...]:
        return tuple(p.action for p in self.objects)

    def creates(self) -> tuple[Manifest, ...]:
        """Objects this stage creates: the kinds and namespaces later stages may need."""
        return tuple(p.manifest for p in self.objects if p.action.change is Change.CREATE)


@dataclass(frozen=True)
class ApplyPlan:
    """Everything a sync of one Kustomization will do, in order, under one id."""

    id: str
    kustomization: str
    stages: tuple[StagePlan, ...] = ()
    prune: tuple[ObjectAction, ...] = ()
    health: tuple[HealthCheck, ...] = ()
    refused: tuple[str, ...] = ()

    @property
    def actions(self) -> tuple[ObjectAction, ...]:
        """Each rendered object's action, in apply order (refused objects left out)."""
        return tuple(a for stage in self.stages for a in stage.actions)

    @property
    def deletes(self) -> tuple[ObjectAction, ...]:
        """The prunes that delete something (an object already gone costs no request)."""
        return tuple(a for a in self.prune if deletes(a))

    @property
    def changes(self) -> tuple[ObjectAction, ...]:
        """What the sync writes or deletes."""
        return tuple(a for a in (*self.actions, *self.prune) if a.writes)

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "kustomization": self.kustomization,
                "stages": [{"name": s.name, "actions": [a.to_json() for a in s.actions],
                            "refused": list(s.refused)} for s in self.stages],
                "prune": [a.to_json() for a in self.prune],
                "health": [f"{h.kind}/{h.namespace}/{h.name}" if h.namespace else f"{h.kind}/{h.name}"
                           for h in self.health],
                "refused": list(self.refused)}


def deletes(action: ObjectAction) -> bool:
    """Whether a prune action sends a delete (not when the object was already gone)."""
    return action.change is Change.PRUNE and not action.gone


def wants_dry_run(manifest: Manifest, live: Mapping[str, Any] | None) -> bool:
    """Whether the observer should ask the server: a skipped object needs no dry-run."""
    return not skip_reason(manifest, live)


def plan_object(kustomization: Kustomization, facts: ObjectFacts) -> PlannedObject | str:
    """One object's action, or the reason it is refused (Flux's decisions, `decide`'s rules)."""
    manifest, live = facts.manifest, facts.live
    if facts.pending:
        return PlannedObject(manifest, ObjectAction(manifest.id, manifest.version, Change.CREATE,
                                                    origin=manifest.origin))
    reason = skip_reason(manifest, live)
    if reason:
        return PlannedObject(manifest, ObjectAction(manifest.id, manifest.version, Change.SKIP,
                                                    origin=manifest.origin, reason=reason))
    if facts.immutable is not None and live is not None and kustomization.force:
        changed = ", ".join(facts.immutable) or "a field"
        return PlannedObject(manifest, ObjectAction(manifest.id, manifest.version, Change.RECREATE,
                                                    origin=manifest.origin,
                                                    reason=f"immutable {changed} changed"),
                             facts.immutable)
    if facts.refusal or facts.merged is None:
        return facts.refusal or f"{manifest.id}: the server gave no dry-run answer"
    return PlannedObject(manifest, decide(manifest, live, facts.merged))


def plan_stage(kustomization: Kustomization, stage: Stage, facts: Sequence[ObjectFacts | str]) -> StagePlan:
    """A stage's plan from its objects' facts (a str: the object could not be observed)."""
    planned: list[PlannedObject] = []
    refused: list[str] = []
    ready: set[ObjectId] = set()
    for fact in facts:
        outcome = fact if isinstance(fact, str) else plan_object(kustomization, fact)
        if isinstance(outcome, str):
            refused.append(outcome)
            continue
        planned.append(outcome)
        if not isinstance(fact, str) and outcome.action.change is Change.UNCHANGED and assess(fact.live).ready:
            ready.add(outcome.manifest.id)  # already read as ready: waiting needs no second read
    wait_for = tuple(HealthCheck(p.manifest.api_version, p.manifest.kind, p.manifest.name, p.manifest.namespace)
                     for p in planned if stage.wait and p.action.change is not Change.SKIP
                     and p.manifest.id not in ready)
    return StagePlan(stage.name, tuple(planned), tuple(refused), wait_for)


def plan_prune(kustomization: Kustomization, entries: Iterable[ClusterObject],
               live: Mapping[ObjectId, Mapping[str, Any] | None]) -> tuple[ObjectAction, ...]:
    """Each stale entry's prune or keep, given its live object (the observer read each one)."""
    return tuple(prune_decision(kustomization, entry, live.get(entry.object)) for entry in entries)


def plan(plan_id: str, kustomization: Kustomization, stages: Sequence[StagePlan],
         desired: Sequence[Manifest], prune: Sequence[ObjectAction], refused: Sequence[str] = ()) -> ApplyPlan:
    """The whole plan: the stages, the prunes, and the health checks of what is desired."""
    return ApplyPlan(plan_id, kustomization.key.ref, tuple(stages), tuple(prune),
                     health_targets(kustomization, desired),
                     tuple(r for s in stages for r in s.refused) + tuple(refused))


def plan_recorded(plan_id: str, kustomization: Kustomization, manifests: Iterable[Manifest],
                  inventory: Sequence[ClusterObject]) -> ApplyPlan:
    """The plan judged offline, against the inventory the store recorded: an object is created
    when not recorded, updated when its checksum or version differs (no field diff: there is no
    live object to compare), else unchanged; recorded objects the rendering dropped are pruned,
    or kept when prune is off. No health checks: nothing is waited for.

    There is no server to say which kinds are cluster-scoped; an object whose namespaced identity
    is not recorded but whose cluster-scoped one is counts as that object, without its namespace,
    as a sync would apply it. Raises ManifestError as `prepare` does.
    """
    recorded = {e.object: e for e in inventory if e.pruned_at is None}
    planned: list[StagePlan] = []
    for stage in stages(prepare(manifests, kustomization)):
        objects: list[PlannedObject] = []
        for manifest in stage.manifests:
            entry = recorded.get(manifest.id)
            if entry is None and manifest.namespace:
                scoped = cluster_scoped(manifest)
                if scoped.id in recorded:
                    manifest, entry = scoped, recorded[scoped.id]
            change = (Change.CREATE if entry is None
                      else Change.UPDATE if (entry.checksum, entry.version) != (checksum(manifest), manifest.version)
                      else Change.UNCHANGED)
            objects.append(PlannedObject(manifest, ObjectAction(manifest.id, manifest.version, change,
                                                                origin=manifest.origin)))
        planned.append(StagePlan(stage.name, tuple(objects)))
    seen = {p.manifest.id for s in planned for p in s.objects}
    prune = tuple(ObjectAction(e.object, e.version, Change.PRUNE) if kustomization.prune
                  else ObjectAction(e.object, e.version, Change.KEEP, reason="prune is off")
                  for e in stale(recorded.values(), seen))
    return ApplyPlan(plan_id, kustomization.key.ref, tuple(planned), prune)


def crd_scopes(manifests: Iterable[Manifest]) -> dict[tuple[str, str], bool]:
    """(group, kind) -> namespaced, for every CustomResourceDefinition among `manifests`."""
    scopes: dict[tuple[str, str], bool] = {}
    for m in manifests:
        if (m.group, m.kind) != ("apiextensions.k8s.io", "CustomResourceDefinition"):
            continue
        spec = m.body.get("spec")
        if not isinstance(spec, Mapping):
            continue
        names = spec.get("names")
        kind = names.get("kind") if isinstance(names, Mapping) else None
        if isinstance(kind, str) and isinstance(spec.get("group"), str):
            scopes[(str(spec["group"]), kind)] = spec.get("scope", "Namespaced") != "Cluster"
    return scopes


def new_namespaces(manifests: Iterable[Manifest]) -> frozenset[str]:
    """The Namespaces among `manifests` (objects in them cannot be dry-run before they exist)."""
    return frozenset(m.name for m in manifests if (m.group, m.kind) == ("", "Namespace"))
