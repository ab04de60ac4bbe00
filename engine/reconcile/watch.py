"""`gitward watch`: re-plan a local checkout whenever a rule file or a manifest changes.

A watchdog observer feeds file events into a debouncer; after a quiet spell the checkout is
checked, its policies decided on the recorded tags (nothing is recorded), its marker updates
planned, and every Kustomization rendered and compared with the inventory the store last
recorded (created / changed / pruned, by object identity and checksum), or, with a
`LiveCluster`, with the live cluster through `diff_kustomization`'s server-side dry-runs.
With `LiveCluster(apply=True)`, a plan without errors is then applied: each Kustomization
rendered from the working tree is synced with `sync_kustomization` under a `worktree_revision`.
Problems in the tree or the cluster are part of a report, never an exception: the watcher keeps
running until it is interrupted.

Events the watcher ignores: anything under `.git/`, editor swap and lock files (`*.swp`,
`*~`, vim's `4913` probe, emacs's `.#name`), gitward's own temporary files, and paths the
checkout's ignore rules (Flux's defaults and `.sourceignore` files) leave out.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from engine.errors import GitwardError, Problem, RuleError, Severity, SourcePos, of_severity
from engine.evaluate.apply import Change, ObjectAction, checksum, prepare
from engine.evaluate.applyplan import plan_recorded
from engine.evaluate.order import dependencies, dependency_order
from engine.model import (
    ClusterObject,
    FileChange,
    GateDecision,
    Kustomization,
    Manifest,
    ObjectId,
    ObjectKey,
    RuleSet,
)
from engine.observe.cluster import ClusterClient, ClusterError, connect, impersonating
from engine.reconcile.build import build_kustomization, checkout_source
from engine.reconcile.cluster import sync_kustomization
from engine.reconcile.diff import DiffResult, diff_kustomization
from engine.reconcile.order import Reconciled, not_applied
from engine.reconcile.repo import LoadedCluster, RepoSpec, check_repository, read_marked_tree
from engine.reconcile.commits import write_changes
from engine.reconcile.updates import plan_checkout
from engine.reconcile.variables import cluster_variables
from engine.rules.ignore import IGNORE_FILE, IgnoreRules
from engine.rules.load import display_path
from engine.store.db import Store
from engine.store.inventory import list_inventory
from engine.store.queries import is_suspended

DEBOUNCE_SECONDS = 0.1
"""Quiet time after the last event before re-planning: one save is often several events."""

APPLY_TIMEOUT = timedelta(seconds=10)
"""With `--apply`, the most a sync waits for health or readiness (less when the Kustomization's
own timeout is shorter), so a save is never stuck behind a rollout."""

APPLY_POLL_SECONDS = 0.5
"""Seconds between readiness polls while an applied Kustomization's health is awaited."""

WORKTREE = "worktree"
"""The `branch` part of a revision applied from a working tree: `worktree@sha256:<12 hex>`."""

_SWAP = re.compile(r"(\.sw[a-px]|~|\.gitward)$|^\.#|^4913$")
"""Editor swap/backup/lock files (vim, emacs) and write_atomically's temporary files."""


# Comparing a rendering with the recorded inventory (pure) -----------------------------------


@dataclass(frozen=True)
class ObjectDiff:
    """One Kustomization's rendering against its recorded inventory.

    `pruned` are recorded objects the rendering no longer has that a sync would delete;
    `released` the same with prune off (left in the cluster, dropped from the inventory).
    `against` says what the rendering was compared with: the store's inventory or the live
    cluster; only the latter knows each changed object's differing fields (`drift`).
    """

    kustomization: str
    created: tuple[ObjectId, ...] = ()
    changed: tuple[ObjectId, ...] = ()
    pruned: tuple[ObjectId, ...] = ()
    released: tuple[ObjectId, ...] = ()
    unchanged: int = 0
    against: str = "store"
    drift: tuple[ObjectAction, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.created or self.changed or self.pruned or self.released)

    def to_json(self) -> dict[str, object]:
        return {"kustomization": self.kustomization,
                "created": [str(o) for o in self.created],
                "changed": [str(o) for o in self.changed],
                "pruned": [str(o) for o in self.pruned],
                "released": [str(o) for o in self.released],
                "unchanged": self.unchanged,
                "against": self.against,
                "drift": [a.to_json() for a in self.drift]}


def compare_inventory(ks: Kustomization, manifests: Iterable[Manifest],
                      inventory: Sequence[ClusterObject]) -> ObjectDiff:
    """Created, changed and gone objects of a rendering, judged by identity and checksum
    (`plan_recorded`'s plan, in the watcher's terms). Raises ManifestError as `prepare` does."""
    plan = plan_recorded(WORKTREE, ks, manifests, inventory)
    gone = tuple(a.object for a in plan.prune)
    return ObjectDiff(ks.key.ref, _of(plan.actions, Change.CREATE), _of(plan.actions, Change.UPDATE),
                      gone if ks.prune else (), () if ks.prune else gone,
                      len(_of(plan.actions, Change.UNCHANGED)))


def _of(actions: Iterable[ObjectAction], change: Change) -> tuple[ObjectId, ...]:
    return tuple(a.object for a in actions if a.change is change)


def from_cluster(result: DiffResult) -> ObjectDiff:
    """`diff_kustomization`'s answer in the watcher's terms; skipped objects count as unchanged
    (a sync leaves them as they are)."""
    changed = tuple(a for a in result.objects if a.change in (Change.UPDATE, Change.RECREATE))
    return ObjectDiff(result.kustomization.key.ref,
                      created=tuple(a.object for a in result.objects if a.change is Change.CREATE),
                      changed=tuple(a.object for a in changed),
                      pruned=tuple(a.object for a in result.deleted),
                      unchanged=sum(1 for a in result.objects if not a.change.writes),
                      against="cluster", drift=changed)


def worktree_revision(ks: Kustomization, manifests: Iterable[Manifest]) -> str:
    """`worktree@sha256:<12 hex>`: the revision a sync from a working tree is recorded under,
    naming the rendering (each object's identity, version and checksum; a Secret's values are
    left out, as `checksum` leaves them), since there is no commit to name. Raises ManifestError."""
    digest = hashlib.sha256()
    for manifest in sorted(prepare(manifests, ks), key=lambda m: str(m.id)):
        digest.update(f"{manifest.id}\t{manifest.version}\t{checksum(manifest)}\n".encode())
    return f"{WORKTREE}@sha256:{digest.hexdigest()[:12]}"


# The live cluster --------------------------------------------------------------------------


@dataclass
class LiveCluster:
    """The cluster a watcher compares with (and, with `apply`, syncs to).

    Connected on first use and again after a plan that met a cluster error, so an API server
    that is down, or restarted, costs that plan a located problem and never the watcher.
    """

    kubeconfig: Path | None = None
    context: str | None = None
    apply: bool = False
    _client: ClusterClient | None = field(default=None, repr=False)

    def client(self) -> ClusterClient:
        """The connected client; raises ClusterError (KubeconfigError for a bad kubeconfig)."""
        if self._client is None:
            self._client = connect(self.kubeconfig, self.context)
        return self._client

    def close(self) -> None:
        """Close the connection, if any: the next use connects (and discovers the API) again."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def problem(self, err: GitwardError) -> Problem:
        """A connection failure as a plan's problem, located at the kubeconfig when one is given."""
        pos = SourcePos(display_path(self.kubeconfig)) if self.kubeconfig else None
        where = f" at {_address(err)}" if _address(err) else ""
        context = f" (context {self.context})" if self.context else ""
        return Problem(Severity.ERROR, f"cluster{context}{where}: {err}", pos,
                       hint="the watcher keeps running and connects again on the next save")


def _address(err: BaseException) -> str:
    """host:port of the server a transport error was about (urllib3 names its pool), or ''."""
    pool = getattr(err.__cause__, "pool", None)
    host, port = getattr(pool, "host", None), getattr(pool, "port", None)
    return f"{host}:{port}" if isinstance(host, str) and host else ""


# One re-plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchReport:
    """What one re-plan found: problems, planned marker updates, object changes, files written."""

    at: datetime
    trigger: tuple[str, ...]
    problems: tuple[Problem, ...] = ()
    updates: tuple[FileChange, ...] = ()
    gates: tuple[GateDecision, ...] = ()
    skipped: tuple[str, ...] = ()
    objects: tuple[ObjectDiff, ...] = ()
    written: tuple[str, ...] = ()
    seconds: float = 0.0
    applied: tuple[Reconciled, ...] = ()
    planned: bool = False
    """Whether the rules loaded and the marker updates were planned (errors may come after)."""

    @property
    def errors(self) -> tuple[Problem, ...]:
        return of_severity(self.problems, Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return of_severity(self.problems, Severity.WARNING)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), "trigger": list(self.trigger), "ok": self.ok,
                "planned": self.planned,
                "errors": [p.to_json() for p in self.errors],
                "warnings": [p.to_json() for p in self.warnings],
                "updates": [u.to_json() for u in self.updates],
                "gates": [g.to_json() for g in self.gates],
                "skipped": list(self.skipped),
                "objects": [d.to_json() for d in self.objects],
                "written": list(self.written),
                "applied": [applied_json(a) for a in self.applied],
                "seconds": round(self.seconds, 4)}


def applied_json(outcome: Reconciled) -> dict[str, object]:
    """One Kustomization's turn under `--apply`: its sync, or why there was none."""
    result = outcome.result
    return {"kustomization": outcome.kustomization.key.ref, "revision": outcome.revision or None,
            "ok": outcome.ready, "skipped": outcome.skipped or None,
            "blocked": outcome.blocked or None, "error": outcome.error or None,
            "summary": result.summary() if result is not None else None,
            "sync": result.to_json() if result is not None else None}


def replan(root: Path, store: Store | None, now: datetime, *, write: bool = False,
           trigger: Sequence[str] = (), cluster: LiveCluster | None = None) -> WatchReport:
    """Check, plan and render the checkout at `root`; with `write`, apply the marker updates.

    Objects are compared with the store's inventory, or with `cluster` when one is given; with
    `cluster.apply` (which needs `store`, where the syncs are recorded) a plan without errors is
    applied. Every problem a user or the cluster can cause ends up in the report; without
    `cluster.apply` nothing is recorded in the store.
    """
    started = time.perf_counter()
    try:
        loaded, found = check_repository(RepoSpec(root))
        checkout = loaded.one()
        rules = checkout.rules
    except GitwardError as err:
        return WatchReport(now, tuple(trigger), tuple(_as_problems(err, root)),
                           seconds=time.perf_counter() - started)
    problems = list(found.sorted())
    try:
        planned = plan_checkout(read_marked_tree(root, rules), rules, store, now, record=False)
    except GitwardError as err:
        problems.extend(_as_problems(err, root))
        return WatchReport(now, tuple(trigger), tuple(problems), seconds=time.perf_counter() - started)
    problems.extend(planned.plan.warnings)
    problems.extend(e.problem for e in planned.plan.errors)
    written: list[str] = []
    if write:
        for action in planned.plan.actions:
            written.extend(write_changes(root, planned.texts[action.target]))
    if cluster is not None:
        objects, applied = _against_cluster(root, checkout, store, now, cluster, problems)
    else:
        objects, applied = _against_store(root, checkout, store, problems), ()
    return WatchReport(now, tuple(trigger), tuple(dict.fromkeys(problems)),
                       tuple(f for a in planned.plan.actions for f in a.files),
                       planned.plan.gates, planned.plan.skipped, tuple(objects), tuple(written),
                       time.perf_counter() - started, applied, planned=True)


def _against_store(root: Path, checkout: LoadedCluster, store: Store | None,
                   problems: list[Problem]) -> list[ObjectDiff]:
    objects: list[ObjectDiff] = []
    rules = checkout.rules
    for ks in checkout.buildable():
        try:
            built = build_kustomization(root, ks, source=checkout_source(rules, ks))
            inventory = list_inventory(store, ks.key.ref) if store is not None else ()
            objects.append(compare_inventory(ks, built.manifests, inventory))
        except GitwardError as err:
            problems.extend(_as_problems(err, root, f"Kustomization {ks.key.ref}: "))
            continue
        problems.extend(built.warnings)
    return objects


def _against_cluster(root: Path, checkout: LoadedCluster, store: Store | None, now: datetime,
                     cluster: LiveCluster, problems: list[Problem]
                     ) -> tuple[list[ObjectDiff], tuple[Reconciled, ...]]:
    """Diff every Kustomization with the live cluster, then apply if asked and nothing failed.

    Any cluster trouble closes the connection, so the next plan starts from a fresh one."""
    try:
        client = cluster.client()
    except ClusterError as err:
        problems.append(cluster.problem(err))
        return [], ()
    objects: list[ObjectDiff] = []
    trouble = False
    rules = checkout.rules
    for ks in checkout.buildable():
        try:
            result = diff_kustomization(store, rules, ks, root=root, client=client)
        except GitwardError as err:
            problems.extend(_as_problems(err, root, f"Kustomization {ks.key.ref}: "))
            trouble = trouble or isinstance(err, ClusterError)
            continue
        problems.extend(Problem(Severity.ERROR, f"Kustomization {ks.key.ref}: {error}", ks.origin)
                        for error in result.errors)
        problems.extend(result.warnings)
        trouble = trouble or bool(result.errors)
        objects.append(from_cluster(result))
    applied: tuple[Reconciled, ...] = ()
    if cluster.apply and not any(p.severity is Severity.ERROR for p in problems):
        if store is None:
            raise ValueError("applying from a working tree needs a store to record the syncs in")
        applied = apply_worktree(root, rules, store, client, now)
        trouble = any(a.error or (a.result is not None and a.result.error) for a in applied)
    if trouble:
        cluster.close()
    return objects, applied


def apply_worktree(root: Path, rules: RuleSet, store: Store, client: ClusterClient,
                   now: datetime) -> tuple[Reconciled, ...]:
    """Sync every Kustomization rendered from the working tree at `root`, dependencies first.

    Suspended ones (in the rules or the store) are skipped; one whose dependency failed here is
    blocked. Health and readiness waits are bounded by APPLY_TIMEOUT. Each sync is recorded in
    `store` under its `worktree_revision`; failures are outcomes, never exceptions.
    """
    outcomes: list[Reconciled] = []
    failed: set[ObjectKey] = set()
    try:
        order = dependency_order(rules.kustomizations)
    except GitwardError as err:
        return tuple(Reconciled(ks, error=str(err)) for ks in rules.kustomizations)
    for ks in order:
        ref = ks.key.ref
        if ks.suspend or is_suspended(store, Kustomization.KIND, ref):
            outcomes.append(Reconciled(ks, skipped=f"Kustomization {ref} is suspended: not applied"))
            continue
        if not_applied(ks):
            outcomes.append(Reconciled(ks, skipped=not_applied(ks)))
            continue
        waiting = [key.ref for key in dependencies(ks) if key in failed]
        if waiting:
            failed.add(ks.key)
            outcomes.append(Reconciled(ks, blocked=f"dependency {', '.join(waiting)} was not applied"))
            continue
        try:
            built = build_kustomization(root, ks, source=checkout_source(rules, ks),
                                        variables_from=cluster_variables(client))
            revision = worktree_revision(ks, built.manifests)
        except GitwardError as err:
            failed.add(ks.key)
            outcomes.append(Reconciled(ks, error=str(err), exit_code=err.exit_code))
            continue
        bounded = replace(ks, timeout=min(ks.effective_timeout, APPLY_TIMEOUT))
        if ks.service_account_name:
            try:
                with impersonating(client, ks.namespace, ks.service_account_name) as acting:
                    result = sync_kustomization(store, bounded, built.manifests, revision, client=acting,
                                                now=now, poll_interval=APPLY_POLL_SECONDS)
            except GitwardError as err:
                failed.add(ks.key)
                outcomes.append(Reconciled(ks, revision, error=str(err), exit_code=err.exit_code))
                continue
        else:
            result = sync_kustomization(store, bounded, built.manifests, revision, client=client,
                                        now=now, poll_interval=APPLY_POLL_SECONDS)
        outcome = Reconciled(ks, revision, result)
        if outcome.failed:
            failed.add(ks.key)
        outcomes.append(outcome)
    return tuple(outcomes)


def _as_problems(err: GitwardError, root: Path, prefix: str = "") -> list[Problem]:
    if isinstance(err, RuleError):
        return list(err.problems)
    return [Problem(Severity.ERROR, f"{prefix}{err}", SourcePos(display_path(root)))]


# Watching ----------------------------------------------------------------------------------


def is_noise(rel: str) -> bool:
    """Whether a repo-relative path is version control or an editor's scratch file."""
    parts = rel.split("/")
    return ".git" in parts[:-1] or parts[-1] == ".git" or bool(_SWAP.search(parts[-1]))


def ignore_rules(root: Path) -> IgnoreRules:
    """The checkout's ignore rules as source-controller applies them (every `.sourceignore`)."""
    return IgnoreRules.load(root)


def is_ignored(rules: IgnoreRules, rel: str) -> bool:
    """Whether the checkout's ignore rules leave the file out (each path is judged on its own)."""
    return rules.ignored(rel)


@dataclass
class _Pending:
    """Changed paths waiting for a quiet spell; filled by the observer's thread."""

    changed: set[str] = field(default_factory=set)
    last: float = 0.0
    lock: threading.Condition = field(default_factory=threading.Condition)

    def add(self, rel: str) -> None:
        with self.lock:
            self.changed.add(rel)
            self.last = time.monotonic()
            self.lock.notify()

    def take(self, quiet: float) -> list[str]:
        """Block until something changed and then nothing for `quiet` seconds; the paths."""
        with self.lock:
            while True:
                if not self.changed:
                    self.lock.wait(0.5)  # a bounded wait, so Ctrl-C is seen promptly
                    continue
                left = self.last + quiet - time.monotonic()
                if left <= 0:
                    paths, self.changed = sorted(self.changed), set()
                    return paths
                self.lock.wait(left)


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, pending: _Pending) -> None:
        self.root = root
        self.pending = pending
        self.rules = ignore_rules(root)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        for raw in paths:
            if not raw:
                continue
            path = os.fsdecode(raw)
            try:
                rel = Path(path).relative_to(self.root).as_posix()
            except ValueError:
                continue
            if rel == "." or is_noise(rel):
                continue
            if rel.rsplit("/", 1)[-1] == IGNORE_FILE:
                self.rules = ignore_rules(self.root)
            elif event.is_directory or is_ignored(self.rules, rel):
                continue
            self.pending.add(rel)


def watch(root: Path, store: Store | None, report: Callable[[WatchReport], None], *,
          write: bool = False, debounce: float = DEBOUNCE_SECONDS,
          clock: Callable[[], datetime] = lambda: datetime.now(UTC),
          cluster: LiveCluster | None = None) -> None:
    """Plan once, then re-plan after every burst of changes, until KeyboardInterrupt.

    `report` is called with each plan, on the calling thread; `cluster` as for `replan`.
    """
    root = root.resolve()
    pending = _Pending()
    observer = Observer()
    observer.schedule(_Handler(root, pending), str(root), recursive=True)
    observer.start()
    try:
        report(replan(root, store, clock(), write=write, cluster=cluster))
        while True:
            changed = pending.take(debounce)
            report(replan(root, store, clock(), write=write, trigger=changed, cluster=cluster))
    finally:
        observer.stop()
        observer.join(timeout=5)
