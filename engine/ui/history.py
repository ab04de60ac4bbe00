"""What an automation and a Kustomization did, read from the `actions` table: commits pushed
with their file changes and decisions; applies and prunes per revision beside the inventory.

Readers only, like engine/ui/pages.py; payload text is scrubbed of credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.model import ClusterObject, ImageUpdate, Kustomization
from engine.redact import public_url, scrub
from engine.store import decisions as policy_decisions
from engine.store.actions import ActionRecord, list_actions
from engine.store.db import Store
from engine.store.inventory import list_inventory
from engine.store.status import ObjectStatus
from engine.ui.pages import status_of

READ = 500
"""Recent actions read for one object's page."""


@dataclass(frozen=True)
class FileChange:
    path: str
    line: int
    policy: str
    old: str
    new: str


@dataclass(frozen=True)
class Decided:
    id: int
    policy: str
    selected: str


@dataclass(frozen=True)
class Commit:
    """A commit action of the automation: pushed, skipped or failed, and why."""

    id: int
    status: str
    at: datetime
    branch: str
    url: str
    sha: str
    subject: str
    trailers: tuple[str, ...]
    files: tuple[FileChange, ...]
    decisions: tuple[Decided, ...]
    error: str


@dataclass(frozen=True)
class AutomationPage:
    automation: ImageUpdate
    status: ObjectStatus
    commits: tuple[Commit, ...]


@dataclass(frozen=True)
class ObjectChange:
    object: str
    change: str
    reason: str
    diff: tuple[tuple[str, str, str], ...]
    """(field path, old, new)."""


@dataclass(frozen=True)
class Applied:
    """One apply (a stage) or prune action on the Kustomization."""

    id: int
    plan_id: str
    type: str
    stage: str
    status: str
    at: datetime
    revision: str
    changes: tuple[ObjectChange, ...]
    error: str


@dataclass(frozen=True)
class KustomizationPage:
    kustomization: Kustomization
    status: ObjectStatus
    inventory: tuple[ClusterObject, ...]
    actions: tuple[Applied, ...]
    """Newest first."""


def _text(value: Any) -> str:
    return scrub("" if value is None else str(value))


def _commit(store: Store, action: ActionRecord) -> Commit:
    payload = action.payload
    subject, _, body = str(payload.get("message", "")).partition("\n")
    trailers = tuple(line for line in body.splitlines() if line.startswith("Gitward-"))
    files = tuple(FileChange(_text(f.get("path")), int(f.get("line") or 0), _text(f.get("policy")),
                             _text(f.get("old")), _text(f.get("new")))
                  for f in payload.get("files", []))
    decided = []
    policies = sorted({f.policy for f in files})
    for number in payload.get("decisions", []):
        found = (policy_decisions.decision_by_id(store, p, int(number)) for p in policies)
        decision = next((d for d in found if d is not None), None)
        if decision is not None:
            decided.append(Decided(int(number), decision.policy, decision.selected_tag or ""))
    return Commit(action.id, action.status, action.finished_at or action.created_at,
                  _text(payload.get("branch")), public_url(str(payload.get("url", ""))),
                  _text(payload.get("commit")), _text(subject), trailers, files, tuple(decided),
                  _text(action.error))


def automation_page(store: Store | None, automation: ImageUpdate) -> AutomationPage:
    """The automation's commit actions, newest first, each with its files and decisions."""
    commits: tuple[Commit, ...] = ()
    if store is not None:
        commits = tuple(_commit(store, a) for a in list_actions(store, limit=READ, types=("commit",))
                        if automation.key.ref in a.payload.get("automations", []))
    return AutomationPage(automation, status_of(store, automation), commits)


def _applied(action: ActionRecord) -> Applied:
    payload = action.payload
    changes = tuple(
        ObjectChange(_text(o.get("object")), _text(o.get("change")), _text(o.get("reason")),
                     tuple((_text(d.get("path")), _text(d.get("old")), _text(d.get("new")))
                           for d in o.get("diff", [])))
        for o in payload.get("objects", []))
    return Applied(action.id, action.plan_id, action.type, _text(payload.get("stage")),
                   action.status, action.finished_at or action.created_at,
                   _text(payload.get("revision")), changes, _text(action.error))


def kustomization_page(store: Store | None, kustomization: Kustomization) -> KustomizationPage:
    """The inventory (pruned objects too) and the recent applies and prunes, newest first."""
    inventory: tuple[ClusterObject, ...] = ()
    actions: tuple[Applied, ...] = ()
    if store is not None:
        ref = kustomization.key.ref
        inventory = list_inventory(store, ref, include_pruned=True)
        actions = tuple(_applied(a) for a in list_actions(
            store, limit=READ, types=("apply", "prune"), target=f"{Kustomization.KIND}/{ref}"))
    return KustomizationPage(kustomization, status_of(store, kustomization),
                             tuple(sorted(inventory, key=lambda o: str(o.object))), actions)
