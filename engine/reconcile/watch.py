"""`gitward watch`: re-plan a local checkout whenever a rule file or a manifest changes.

A watchdog observer feeds file events into a debouncer; after a quiet spell the checkout is
checked, its policies decided on the recorded tags (nothing is recorded), its marker updates
planned, and every Kustomization rendered and compared with the inventory the store last
recorded (created / changed / pruned, by object identity and checksum). Problems in the tree
are part of a report, never an exception: the watcher keeps running until it is interrupted.

Events the watcher ignores: anything under `.git/`, editor swap and lock files (`*.swp`,
`*~`, vim's `4913` probe, emacs's `.#name`), gitward's own temporary files, and paths the
checkout's ignore rules (Flux's defaults and `.sourceignore` files) leave out.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from engine.errors import GitwardError, Problem, RuleError, Severity, SourcePos
from engine.evaluate.apply import checksum, cluster_scoped, prepare, stale
from engine.model import ClusterObject, FileChange, GateDecision, GitSource, Kustomization, Manifest, ObjectId, ObjectKey
from engine.reconcile.build import build_kustomization
from engine.reconcile.repo import check_repository
from engine.reconcile.updates import plan_checkout, write_changes
from engine.rules.ignore import IGNORE_FILE, IgnoreRules
from engine.rules.load import display_path
from engine.store.db import Store
from engine.store.inventory import list_inventory

DEBOUNCE_SECONDS = 0.1
"""Quiet time after the last event before re-planning: one save is often several events."""

_SWAP = re.compile(r"(\.sw[a-px]|~|\.gitward)$|^\.#|^4913$")
"""Editor swap/backup/lock files (vim, emacs) and write_atomically's temporary files."""


# Comparing a rendering with the recorded inventory (pure) -----------------------------------


@dataclass(frozen=True)
class ObjectDiff:
    """One Kustomization's rendering against its recorded inventory.

    `pruned` are recorded objects the rendering no longer has that a sync would delete;
    `released` the same with prune off (left in the cluster, dropped from the inventory).
    """

    kustomization: str
    created: tuple[ObjectId, ...] = ()
    changed: tuple[ObjectId, ...] = ()
    pruned: tuple[ObjectId, ...] = ()
    released: tuple[ObjectId, ...] = ()
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.created or self.changed or self.pruned or self.released)

    def to_json(self) -> dict[str, object]:
        return {"kustomization": self.kustomization,
                "created": [str(o) for o in self.created],
                "changed": [str(o) for o in self.changed],
                "pruned": [str(o) for o in self.pruned],
                "released": [str(o) for o in self.released],
                "unchanged": self.unchanged}


def compare_inventory(ks: Kustomization, manifests: Iterable[Manifest],
                      inventory: Sequence[ClusterObject]) -> ObjectDiff:
    """Created, changed and gone objects of a rendering, judged by identity and checksum.

    Offline there is no server to say which kinds are cluster-scoped; an object whose
    namespaced identity is not recorded but whose cluster-scoped one is counts as that object,
    without its namespace, as a sync would apply it. Raises ManifestError as `prepare` does.
    """
    recorded = {e.object: e for e in inventory if e.pruned_at is None}
    created: list[ObjectId] = []
    changed: list[ObjectId] = []
    seen: set[ObjectId] = set()
    unchanged = 0
    for manifest in prepare(manifests, ks):
        entry = recorded.get(manifest.id)
        if entry is None and manifest.namespace:
            scoped = cluster_scoped(manifest)
            if scoped.id in recorded:
                manifest, entry = scoped, recorded[scoped.id]
        seen.add(manifest.id)
        if entry is None:
            created.append(manifest.id)
        elif (entry.checksum, entry.version) != (checksum(manifest), manifest.version):
            changed.append(manifest.id)
        else:
            unchanged += 1
    gone = [entry.object for entry in stale(recorded.values(), seen)]
    return ObjectDiff(ks.key.ref, tuple(created), tuple(changed),
                      tuple(gone) if ks.prune else (), () if ks.prune else tuple(gone), unchanged)


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

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), "trigger": list(self.trigger), "ok": self.ok,
                "errors": [p.to_json() for p in self.errors],
                "warnings": [p.to_json() for p in self.warnings],
                "updates": [u.to_json() for u in self.updates],
                "gates": [g.to_json() for g in self.gates],
                "skipped": list(self.skipped),
                "objects": [d.to_json() for d in self.objects],
                "written": list(self.written),
                "seconds": round(self.seconds, 4)}


def replan(root: Path, store: Store | None, now: datetime, *, write: bool = False,
           trigger: Sequence[str] = ()) -> WatchReport:
    """Check, plan and render the checkout at `root`; with `write`, apply the marker updates.

    Every problem a user can cause ends up in the report; nothing is recorded in the store.
    """
    started = time.perf_counter()
    repo, found = check_repository(root)
    problems = list(found.sorted())
    if found.errors:
        return WatchReport(now, tuple(trigger), tuple(problems), seconds=time.perf_counter() - started)
    rules = repo.rules
    try:
        planned = plan_checkout(root, rules, store, now, record=False)
    except GitwardError as err:
        problems.extend(_as_problems(err, root))
        return WatchReport(now, tuple(trigger), tuple(problems), seconds=time.perf_counter() - started)
    problems.extend(planned.plan.warnings)
    written: list[str] = []
    if write:
        for action in planned.plan.actions:
            written.extend(write_changes(root, planned.texts[action.target]))
    objects: list[ObjectDiff] = []
    for ks in rules.kustomizations:
        ref = ks.source_ref
        source = rules.get(ObjectKey(GitSource.KIND, ref.namespace or ks.namespace, ref.name))
        try:
            built = build_kustomization(root, ks, source=source if isinstance(source, GitSource) else None)
            inventory = list_inventory(store, ks.key.ref) if store is not None else ()
            objects.append(compare_inventory(ks, built.manifests, inventory))
        except GitwardError as err:
            problems.extend(_as_problems(err, root, f"Kustomization {ks.key.ref}: "))
            continue
        problems.extend(built.warnings)
    return WatchReport(now, tuple(trigger), tuple(dict.fromkeys(problems)),
                       tuple(f for a in planned.plan.actions for f in a.files),
                       planned.plan.gates, planned.plan.skipped, tuple(objects), tuple(written),
                       time.perf_counter() - started)


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
    """Flux's default exclusions plus every `.sourceignore` in the checkout."""
    rules = IgnoreRules.defaults()
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        if IGNORE_FILE in files:
            rel = Path(directory).relative_to(root).as_posix()
            try:
                text = (Path(directory) / IGNORE_FILE).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            rules = rules.with_file("" if rel == "." else rel, text)
    return rules


def is_ignored(rules: IgnoreRules, rel: str) -> bool:
    """Whether the checkout's ignore rules leave the file, or any directory above it, out."""
    parts = rel.split("/")
    for depth in range(1, len(parts)):
        if rules.ignored("/".join(parts[:depth]), is_dir=True):
            return True
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
          clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Plan once, then re-plan after every burst of changes, until KeyboardInterrupt.

    `report` is called with each plan, on the calling thread.
    """
    root = root.resolve()
    pending = _Pending()
    observer = Observer()
    observer.schedule(_Handler(root, pending), str(root), recursive=True)
    observer.start()
    try:
        report(replan(root, store, clock(), write=write))
        while True:
            changed = pending.take(debounce)
            report(replan(root, store, clock(), write=write, trigger=changed))
    finally:
        observer.stop()
        observer.join(timeout=5)
