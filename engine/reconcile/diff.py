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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.errors import GitwardError, Problem
from engine.evaluate.apply import (
    SECRET_MASK,
    ApiError,
    Change,
    FieldChange,
    ManifestError,
    ObjectAction,
    cluster_scoped,
    decide,
    describe,
    prepare,
    prune_decision,
    skip_reason,
    stale,
    stages,
)
from engine.model import ClusterObject, GitSource, Kustomization, Manifest, ObjectId, ObjectKey, RuleSet
from engine.observe.cluster import ClusterClient, dry_run_apply, is_namespaced, read_object
from engine.reconcile.build import build_kustomization
from engine.reconcile.variables import cluster_variables
from engine.store.db import Store
from engine.store.inventory import list_inventory

_ALREADY_GONE = "already gone"
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@dataclass(frozen=True)
class DiffResult:
    """Each rendered object's change (apply order), the inventory objects a sync would delete,
    the objects the server refused, and the build's warnings."""

    kustomization: Kustomization
    objects: tuple[ObjectAction, ...] = ()
    deleted: tuple[ObjectAction, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def changes(self) -> tuple[ObjectAction, ...]:
        return tuple(a for a in (*self.objects, *self.deleted) if a.change.writes)

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
                "deleted": [a.to_json() for a in self.deleted], "errors": list(self.errors)}


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
    """Compare the Kustomization rendered from `root` (or `path`) with the live cluster.

    Build problems raise (RuleError, KustomizeFailed); an object the server refuses is listed
    in `errors` and the others are still compared. With no store there is no inventory, so
    nothing is reported deleted.
    """
    ref = ks.source_ref
    source = rules.get(ObjectKey(GitSource.KIND, ref.namespace or ks.namespace, ref.name))
    where, rendered_as = local_path(root, ks, path)
    built = build_kustomization(where, rendered_as,
                                source=source if isinstance(source, GitSource) else None,
                                variables_from=cluster_variables(client))
    comparison = _Comparison(client, ks, prepare(built.manifests, ks))
    for stage in stages(comparison.manifests):
        for manifest in stage.manifests:
            comparison.compare(manifest)
    deleted: tuple[ObjectAction, ...] = ()
    if store is not None:
        deleted = comparison.pruned(list_inventory(store, ks.key.ref))
    return DiffResult(ks, tuple(comparison.actions), deleted, tuple(comparison.errors), built.warnings)


class _Comparison:
    """The dry-run of each object in apply order, remembering what the rendering creates."""

    def __init__(self, client: ClusterClient, ks: Kustomization, manifests: Sequence[Manifest]) -> None:
        self.client, self.ks, self.manifests = client, ks, manifests
        self.crd_scopes = _crd_scopes(manifests)
        self.new_namespaces: set[str] = set()
        self.actions: list[ObjectAction] = []
        self.errors: list[str] = []
        self.desired: list[ObjectId] = []

    def compare(self, manifest: Manifest) -> None:
        try:
            scoped, kind_exists = self._scoped(manifest)
        except GitwardError as err:
            self.desired.append(manifest.id)
            self.errors.append(str(err))
            return
        self.desired.append(scoped.id)
        try:
            action = self._action(scoped, kind_exists)
        except GitwardError as err:
            self.errors.append(str(err))
            return
        if scoped.group == "" and scoped.kind == "Namespace" and action.change is Change.CREATE:
            self.new_namespaces.add(scoped.name)
        self.actions.append(action)

    def _scoped(self, manifest: Manifest) -> tuple[Manifest, bool]:
        """The object as the server would name it, and whether the server knows its kind."""
        try:
            namespaced, known = is_namespaced(self.client, manifest), True
        except ApiError as err:
            scope = self.crd_scopes.get((manifest.group, manifest.kind))
            if err.status != 404 or scope is None:
                raise
            namespaced, known = scope, False
        if not namespaced:
            return cluster_scoped(manifest), known
        if not manifest.namespace:
            raise ManifestError(f"{describe(manifest)}: {manifest.kind} is namespaced but the object "
                                "names no namespace; set metadata.namespace or the Kustomization's "
                                "targetNamespace")
        return manifest, known

    def _action(self, manifest: Manifest, kind_exists: bool) -> ObjectAction:
        if not kind_exists or manifest.namespace in self.new_namespaces:
            return ObjectAction(manifest.id, manifest.version, Change.CREATE, origin=manifest.origin)
        live = read_object(self.client, manifest.api_version, manifest.kind, manifest.namespace,
                           manifest.name)
        reason = skip_reason(manifest, live)
        if reason:
            return ObjectAction(manifest.id, manifest.version, Change.SKIP, origin=manifest.origin,
                                reason=reason)
        try:
            merged = dry_run_apply(self.client, manifest)
        except ApiError as err:
            if not (err.immutable and live is not None and self.ks.force):
                raise
            changed = ", ".join(err.fields) or "a field"
            return ObjectAction(manifest.id, manifest.version, Change.RECREATE, origin=manifest.origin,
                                reason=f"immutable {changed} changed")
        action = decide(manifest, live, merged)
        if manifest.group == "" and manifest.kind == "Secret":
            action = replace(action, diff=tuple(_masked(c) for c in action.diff))
        return action

    def pruned(self, inventory: Sequence[ClusterObject]) -> tuple[ObjectAction, ...]:
        """Inventory objects the rendering dropped that a sync would delete now."""
        out: list[ObjectAction] = []
        for entry in stale(inventory, self.desired):
            try:
                live = read_object(self.client, entry.api_version, entry.object.kind,
                                   entry.object.namespace, entry.object.name)
            except GitwardError as err:
                self.errors.append(str(err))
                continue
            decision = prune_decision(self.ks, entry, live)
            if decision.change is Change.PRUNE and decision.reason != _ALREADY_GONE:
                out.append(decision)
        return tuple(out)


def _crd_scopes(manifests: Sequence[Manifest]) -> dict[tuple[str, str], bool]:
    """(group, kind) -> namespaced, for every CustomResourceDefinition in the rendering."""
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


def _masked(change: FieldChange) -> FieldChange:
    """kubectl's last-applied annotation on a Secret carries its values: mask it like `data`."""
    if _LAST_APPLIED not in change.path:
        return change
    return FieldChange(change.path, None if change.old is None else SECRET_MASK,
                       None if change.new is None else SECRET_MASK)
