"""Reconciling several Kustomizations in one run, dependencies first, as Flux's dependsOn asks.

The CLI orders the targets (engine/evaluate/order.py) and hands them to `OrderedReconcile` one
by one. Before applying a Kustomization, each of its dependencies must be Ready: judged by this
run's outcome when the dependency was reconciled in it, else by the store (its last sync event,
as `gitward get` shows it). When both use the same source, the dependency must also have applied
the revision about to be applied (Flux's "revision is not up to date"). A Kustomization that
waits on a dependency is not applied and records a `DependencyNotReady` event.

Each source is fetched (or, without `--with-source`, checked out at its last recorded revision)
once per run, so every Kustomization of a run applies the same commit (or artifact) of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.clock import Clock, utcnow
from engine.errors import GitwardError
from engine.evaluate.order import dependencies
from engine.model import Kustomization, ObjectKey, RuleSet, Source
from engine.observe.cluster import ClusterClient, impersonating
from engine.reconcile.build import build_kustomization
from engine.reconcile.cluster import SyncResult, sync_kustomization
from engine.observe.transport import SecretReader
from engine.reconcile.kustomizations import SourceTree, checkout_for, source_of
from engine.reconcile.variables import cluster_variables
from engine.rules.check import UNFETCHED_SOURCES
from engine.store import queries
from engine.store.db import Store
from engine.store.inventory import applied_revision
from engine.store.status import object_status

DEPENDENCY_NOT_READY = "DependencyNotReady"
RECONCILIATION_FAILED = "ReconciliationFailed"


@dataclass(frozen=True)
class Reconciled:
    """One Kustomization's turn in a run: synced (`result`), `skipped` (suspended), `blocked`
    by a dependency, or stopped by an `error` before its sync (with that error's exit code)."""

    kustomization: Kustomization
    revision: str = ""
    result: SyncResult | None = None
    skipped: str = ""
    blocked: str = ""
    error: str = ""
    exit_code: int = 0

    @property
    def ready(self) -> bool:
        return self.result is not None and self.result.ok

    @property
    def failed(self) -> bool:
        """Not applied, or applied and not Ready; a suspended Kustomization has not failed."""
        return not self.skipped and not self.ready


def not_applied(ks: Kustomization) -> str:
    """Why gitward leaves a Kustomization alone although Flux would apply it, or "": it applies
    to another cluster, or its source is one gitward does not fetch."""
    if ks.remote_cluster:
        return (f"Kustomization {ks.key.ref} applies to another cluster (spec.kubeConfig): "
                "gitward does not apply it")
    if ks.source_ref.kind in UNFETCHED_SOURCES:
        return (f"Kustomization {ks.key.ref}: its source is {ks.source_ref.kind.value} "
                f"{ks.source_ref.name}, which gitward does not fetch: not applied")
    return ""


@dataclass
class OrderedReconcile:
    """A run over several Kustomizations in dependency order (call `reconcile` in that order).

    `plan_id` is passed to every sync of the run (None: each sync draws its own), so a caller
    with a fixed clock gets fixed `actions` rows.
    """

    store: Store
    rules: RuleSet
    client: ClusterClient
    with_source: bool
    cache_dir: Path
    ssh_command: str | None = None
    token: str | None = None
    clock: Clock = utcnow
    plan_id: str | None = None
    read_secret: SecretReader | None = None
    done: dict[ObjectKey, Reconciled] = field(default_factory=dict)
    _checkouts: dict[ObjectKey, SourceTree | GitwardError] = field(default_factory=dict)

    def reconcile(self, ks: Kustomization) -> Reconciled:
        """Check out the source, wait for no dependency, render and apply; never raises a
        GitwardError (it becomes the outcome's `error`, recorded as an event)."""
        outcome = self._reconcile(ks)
        self.done[ks.key] = outcome
        return outcome

    def _reconcile(self, ks: Kustomization) -> Reconciled:
        ref = ks.key.ref
        if ks.suspend or queries.is_suspended(self.store, Kustomization.KIND, ref):
            return Reconciled(ks, skipped=f"Kustomization {ref} is suspended")
        if not_applied(ks):
            return Reconciled(ks, skipped=not_applied(ks))
        try:
            source = source_of(self.rules, ks)
            checkout = self._checkout(source)
        except GitwardError as err:
            return self._failed(ks, err)
        waiting = self._waiting_on(ks, checkout.revision)
        if waiting:
            self._event(ks, DEPENDENCY_NOT_READY, waiting)
            return Reconciled(ks, checkout.revision, blocked=waiting)
        try:
            built = build_kustomization(checkout.path, ks, source=source,
                                        variables_from=cluster_variables(self.client))
        except GitwardError as err:
            return self._failed(ks, err, checkout.revision)
        if ks.service_account_name:
            with impersonating(self.client, ks.namespace, ks.service_account_name) as client:
                result = sync_kustomization(self.store, ks, built.manifests, checkout.revision,
                                           client=client, now=self.clock(), plan_id=self.plan_id)
        else:
            result = sync_kustomization(self.store, ks, built.manifests, checkout.revision,
                                       client=self.client, now=self.clock(),
                                       plan_id=self.plan_id)
        return Reconciled(ks, checkout.revision, result)

    def _checkout(self, source: Source) -> SourceTree:
        """The source's files for this run: fetched (or checked out) on first use only."""
        if source.key not in self._checkouts:
            try:
                self._checkouts[source.key] = checkout_for(
                    self.store, source, with_source=self.with_source, cache_dir=self.cache_dir,
                    ssh_command=self.ssh_command, token=self.token, read_secret=self.read_secret,
                    clock=self.clock)
            except GitwardError as err:
                self._checkouts[source.key] = err
        found = self._checkouts[source.key]
        if isinstance(found, GitwardError):
            raise found
        return found

    def _waiting_on(self, ks: Kustomization, revision: str) -> str:
        """Why `ks` must wait for a dependency ("" when every one is Ready and up to date)."""
        for key in dependencies(ks):
            dep = self.rules.get(key)
            if not isinstance(dep, Kustomization):
                return f"dependency {key.ref} is not defined"
            earlier = self.done.get(key)
            if earlier is not None and not earlier.skipped:
                ready, applied = earlier.ready, earlier.revision
            else:
                ready = object_status(self.store, dep).ready == "True"
                applied = applied_revision(self.store, key.ref)
            if not ready:
                return f"dependency {key.ref} is not ready"
            if _same_source(dep, ks) and _sha(applied) != _sha(revision):
                return (f"dependency {key.ref} is not up to date: it applied {applied or 'nothing'}, "
                        f"the source is at {revision}")
        return ""

    def _failed(self, ks: Kustomization, err: GitwardError, revision: str = "") -> Reconciled:
        self._event(ks, RECONCILIATION_FAILED, str(err))
        return Reconciled(ks, revision, error=str(err), exit_code=err.exit_code)

    def _event(self, ks: Kustomization, reason: str, message: str) -> None:
        queries.record_event(self.store, queries.Event(
            time=self.clock(), object_kind=Kustomization.KIND, object_name=ks.key.ref,
            severity=queries.EventSeverity.ERROR, reason=reason, message=message))


def _same_source(a: Kustomization, b: Kustomization) -> bool:
    def key(ks: Kustomization) -> tuple[str, str, str]:
        ref = ks.source_ref
        return (ref.kind.value, ref.namespace or ks.namespace, ref.name)

    return key(a) == key(b)


def _sha(revision: str) -> str:
    """The commit of a Flux revision (`main@sha1:<sha>` -> `<sha>`)."""
    return revision.rpartition(":")[2]
