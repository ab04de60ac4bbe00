"""The one observe-and-decide loop of the cluster half: a Kustomization's ApplyPlan.

Stage by stage (definitions, classes, resources) the observer reads the stage's facts and
`plan_stage` decides on them; then the recorded objects the rendering dropped are read and
their prunes decided. `diff kustomization` prints the plan; a sync hands `carry_out` (the
executor's stage step, engine/reconcile/cluster.py), so each stage is written, and waited on,
before the next is observed: a custom resource is dry-run once its definition exists. Without
`carry_out`, an object whose kind or namespace an earlier stage creates is planned as created.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from engine.evaluate.apply import prepare, stale, stages
from engine.evaluate.applyplan import (
    ApplyPlan,
    ObjectFacts,
    StagePlan,
    crd_scopes,
    new_namespaces,
    plan,
    plan_prune,
    plan_stage,
)
from engine.model import ClusterObject, Kustomization, Manifest, ObjectId
from engine.observe.cluster import ClusterClient, Kinds
from engine.observe.clusterfacts import CONCURRENCY, Observer, Pending


def plan_kustomization(client: ClusterClient, kustomization: Kustomization, manifests: Sequence[Manifest],
                       inventory: Sequence[ClusterObject], *, plan_id: str | None = None,
                       carry_out: Callable[[StagePlan], None] | None = None) -> ApplyPlan:
    """The plan for syncing `manifests` (as rendered) over the live cluster and `inventory`.

    Raises ManifestError for objects that cannot be applied as written; a refusal by the server
    is part of the plan (`refused`). `carry_out` runs on each stage's plan before the next stage
    is observed, and may raise to stop there. `plan_id` names the plan (None: a random one).
    """
    with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="gitward-plan") as pool:
        observer = Observer(client, kustomization, pool, Kinds(client))
        planned: list[StagePlan] = []
        desired: list[Manifest] = []
        wanted: list[ObjectId] = []
        pending = Pending()
        for stage in stages(prepare(manifests, kustomization)):
            facts = observer.stage(stage, pending)
            stage_plan = plan_stage(kustomization, stage, facts)
            planned.append(stage_plan)
            desired.extend(p.manifest for p in stage_plan.objects)
            wanted.extend(f.manifest.id if isinstance(f, ObjectFacts) else m.id
                          for m, f in zip(stage.manifests, facts))
            if carry_out is not None:
                carry_out(stage_plan)
            else:
                created = [m for s in planned for m in s.creates()]
                pending = Pending(crd_scopes(created), new_namespaces(created))
        gone = stale(inventory, wanted)
        live, failed = observer.stale(gone)
    return plan(plan_id or uuid.uuid4().hex[:12], kustomization, planned, desired,
                plan_prune(kustomization, [e for e in gone if e.object in live], live), failed)
