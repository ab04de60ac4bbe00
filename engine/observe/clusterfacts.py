"""The facts an apply plan is decided on, read from the cluster: never a write.

For one stage of a Kustomization's objects: each object's scope (a cluster-scoped kind loses
its namespace), its live state (one LIST per apiVersion, kind and namespace holding two objects
or more, labelled as this Kustomization's; a GET for the rest), and the server-side dry-run of
its apply. For the objects the rendering dropped: their live state. Reads and dry-runs run on a
pool, results keep the stage's order. engine/evaluate/applyplan.py decides on what comes back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from engine.errors import GitwardError
from engine.evaluate.apply import NAME_LABEL, NAMESPACE_LABEL, ManifestError, Stage, cluster_scoped, describe
from engine.evaluate.applyplan import ObjectFacts, wants_dry_run
from engine.kubeapi import ApiError
from engine.model import ClusterObject, Kustomization, Manifest, ObjectId
from engine.observe.cluster import ClusterClient, Kinds, dry_run_apply, is_namespaced, list_labelled, read_object

CONCURRENCY = 4
"""Objects read and dry-run at once, as Flux's `--concurrent-ssa` default; writes stay in order."""


@dataclass(frozen=True)
class Pending:
    """What earlier stages of the plan will create but have not: kinds (group, kind) -> whether
    namespaced, from their CustomResourceDefinitions, and Namespaces. The server cannot dry-run
    an object of such a kind or in such a namespace yet; it is planned as created."""

    kinds: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    namespaces: frozenset[str] = frozenset()


@dataclass
class Observer:
    """Reads one Kustomization's objects from the cluster, on `pool`, with one kind cache."""

    client: ClusterClient
    kustomization: Kustomization
    pool: Executor
    kinds: Kinds

    def stage(self, stage: Stage, pending: Pending) -> list[ObjectFacts | str]:
        """Each object's facts in the stage's order, or why it could not be observed."""
        scoped: list[ObjectFacts | str] = []
        for manifest in stage.manifests:
            try:
                scoped.append(self._scoped(manifest, pending))
            except GitwardError as err:
                scoped.append(str(err))
        asked = [f.manifest for f in scoped if isinstance(f, ObjectFacts) and not f.pending]
        listed = self._list_owned(asked)
        read = iter(self.pool.map(lambda m: self._object(m, listed), asked))
        return [next(read) if isinstance(f, ObjectFacts) and not f.pending else f for f in scoped]

    def stale(self, entries: Iterable[ClusterObject]) -> tuple[dict[ObjectId, dict[str, Any] | None], list[str]]:
        """The live state of each recorded object the rendering dropped, and the reads that failed."""
        live: dict[ObjectId, dict[str, Any] | None] = {}
        failed: list[str] = []
        for entry in entries:
            obj = entry.object
            try:
                live[obj] = read_object(self.client, entry.api_version, obj.kind, obj.namespace, obj.name,
                                        kinds=self.kinds)
            except GitwardError as err:
                failed.append(str(err))
        return live, failed

    def _scoped(self, manifest: Manifest, pending: Pending) -> ObjectFacts:
        """The object as the server names it; `pending` when its kind or namespace is not there yet."""
        try:
            namespaced, waits = is_namespaced(self.client, manifest, kinds=self.kinds), False
        except ApiError as err:
            scope = pending.kinds.get((manifest.group, manifest.kind))
            if err.status != 404 or scope is None:
                raise
            namespaced, waits = scope, True
        if not namespaced:
            return ObjectFacts(cluster_scoped(manifest), pending=waits)
        if not manifest.namespace:
            raise ManifestError(f"{describe(manifest)}: {manifest.kind} is namespaced but the object "
                                "names no namespace; set metadata.namespace or the Kustomization's "
                                "targetNamespace")
        return ObjectFacts(manifest, pending=waits or manifest.namespace in pending.namespaces)

    def _list_owned(self, manifests: Sequence[Manifest]) -> dict[ObjectId, dict[str, Any]]:
        """The live objects already labelled as this Kustomization's, one LIST per apiVersion, kind
        and namespace holding two objects or more (for one, a GET is as cheap)."""
        groups: dict[tuple[str, str, str], list[Manifest]] = {}
        for manifest in manifests:
            groups.setdefault((manifest.api_version, manifest.kind, manifest.namespace), []).append(manifest)
        ks = self.kustomization
        owner = {NAME_LABEL: ks.name, NAMESPACE_LABEL: ks.namespace}
        shared = [key for key, members in groups.items() if len(members) > 1]
        answers = self.pool.map(lambda key: list_labelled(self.client, key[0], key[1], key[2], owner,
                                                          kinds=self.kinds), shared)
        found: dict[ObjectId, dict[str, Any]] = {}
        for key, by_name in zip(shared, answers):
            for manifest in groups[key]:
                live = by_name.get(manifest.name)
                if live is not None:
                    found[manifest.id] = live
        return found

    def _object(self, manifest: Manifest, listed: Mapping[ObjectId, dict[str, Any]]) -> ObjectFacts | str:
        """Read (unless listed) and dry-run one object; runs on the pool."""
        try:
            live = listed.get(manifest.id)
            if live is None:  # not labelled as ours yet (or relabelled): read it by name
                live = read_object(self.client, manifest.api_version, manifest.kind, manifest.namespace,
                                   manifest.name, kinds=self.kinds)
            if not wants_dry_run(manifest, live):
                return ObjectFacts(manifest, live)
            try:
                merged = dry_run_apply(self.client, manifest, kinds=self.kinds)
            except ApiError as err:
                return ObjectFacts(manifest, live, refusal=str(err),
                                   immutable=err.fields if err.immutable else None)
            return ObjectFacts(manifest, live, merged)
        except GitwardError as err:
            return str(err)
