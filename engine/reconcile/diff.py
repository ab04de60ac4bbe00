"""`gitward diff kustomization`: what a sync of the local checkout would change, without one.

Like `flux diff kustomization`: render the path from the local files (or `--path`), then ask
the API server, per object, what a server-side apply would leave (a dry-run: nothing is
stored), and compare that with the live object, so server defaults never look like drift.
Objects in the Kustomization's inventory (the store's `cluster_objects`) that the rendering
no longer has, and that a sync would prune, are listed as deleted. Only GETs and dry-run
PATCHes are sent: never a write. Secret values are masked. `postBuild.substituteFrom` objects
are read from the cluster, as a sync reads them.

An object that cannot exist yet (its kind comes from a CustomResourceDefinition, or its
namespace from a Namespace, that the same rendering creates) is reported as created without
a dry-run, which the server would refuse.

The comparison is the ApplyPlan a sync would carry out (engine/reconcile/clusterplan.py), so
diff and sync decide alike; this module only renders from the checkout and reports the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.errors import Problem
from engine.evaluate.apply import Change, ObjectAction
from engine.evaluate.applyplan import ApplyPlan
from engine.model import Kustomization, ObjectId, RuleSet
from engine.observe.cluster import ClusterClient
from engine.reconcile.build import build_kustomization, checkout_source
from engine.reconcile.clusterplan import plan_kustomization
from engine.reconcile.variables import cluster_variables
from engine.store.db import Store
from engine.store.inventory import list_inventory


@dataclass(frozen=True)
class DiffResult:
    """The plan a sync would carry out now, and the build's warnings."""

    kustomization: Kustomization
    plan: ApplyPlan
    warnings: tuple[Problem, ...] = ()

    @property
    def objects(self) -> tuple[ObjectAction, ...]:
        """Each rendered object's change, in apply order (refused objects left out)."""
        return self.plan.actions

    @property
    def deleted(self) -> tuple[ObjectAction, ...]:
        """The inventory objects a sync would delete."""
        return self.plan.deletes

    @property
    def errors(self) -> tuple[str, ...]:
        """The objects the server refused, and the recorded objects that could not be read."""
        return self.plan.refused

    @property
    def changes(self) -> tuple[ObjectAction, ...]:
        return self.plan.changes

    @property
    def exit_code(self) -> int:
        """`flux diff`'s: 0 no difference, 1 differences, 2 an object could not be compared."""
        return 2 if self.errors else 1 if self.changes else 0

    def lines(self) -> list[str]:
        """Flux's report: `► Kind/namespace/name created|drifted|deleted`, drift with its fields."""
        out: list[str] = []
        for action in self.changes:
            subject = flux_subject(action.object)
            if action.change is Change.CREATE:
                out.append(f"► {subject} created")
            elif action.change is Change.PRUNE:
                out.append(f"► {subject} deleted")
            else:
                out.append(f"► {subject} drifted")
                if action.change is Change.RECREATE:
                    out.append(f"  {action.reason}: would be deleted and created again (force)")
                out.extend(f"  {change}" for change in action.diff)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"kustomization": self.kustomization.key.ref, "exit_code": self.exit_code,
                "objects": [a.to_json() for a in self.objects],
                "deleted": [a.to_json() for a in self.deleted], "errors": list(self.errors),
                "plan": self.plan.to_json()}


def flux_subject(obj: ObjectId) -> str:
    """`Kind/namespace/name` (`Kind/name` when cluster-scoped), as Flux's change logs write it."""
    return f"{obj.kind}/{obj.namespace}/{obj.name}" if obj.namespace else f"{obj.kind}/{obj.name}"


def local_path(root: Path, ks: Kustomization, path: Path | None) -> tuple[Path, Kustomization]:
    """Where to render from: the checkout at `root` with `spec.path`, or a local directory in
    its place (inside the checkout it keeps the checkout's ignore rules; outside, it is a root)."""
    if path is None:
        return root, ks
    local, top = path.resolve(), root.resolve()
    if local == top or top in local.parents:
        return root, replace(ks, path=local.relative_to(top).as_posix() or ".")
    return path, replace(ks, path=".")


def diff_kustomization(store: Store | None, rules: RuleSet, ks: Kustomization, *, root: Path,
                       client: ClusterClient, path: Path | None = None) -> DiffResult:
    """The plan for syncing the Kustomization rendered from `root` (or `path`) to the live cluster.

    Build problems raise (RuleError, KustomizeFailed, ManifestError); an object the server
    refuses is listed in `errors` and the others are still compared. With no store there is no
    inventory, so nothing is reported deleted.
    """
    where, rendered_as = local_path(root, ks, path)
    built = build_kustomization(where, rendered_as, source=checkout_source(rules, ks),
                                variables_from=cluster_variables(client))
    recorded = list_inventory(store, ks.key.ref) if store is not None else ()
    return DiffResult(ks, plan_kustomization(client, ks, built.manifests, recorded), built.warnings)
