"""Build `state.db.example`: a migrated state database with a few facts about the example repo.

Every timestamp is fixed, so running this again produces the same content; docs/sql.md's audit
queries and views run against it. The story: the first sync of the repository (4 Nov), a new
ledger build seen in the registry, a decision, the commit that rolled it out and the sync that
applied it (5 Nov). Usage: `python examples/make_state_db.py [OUTPUT]` (default: the
repository root's `state.db.example`).
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from engine.evaluate.apply import Change, FieldChange, ObjectAction
from engine.model import (
    ClusterObject,
    CommitAction,
    CommitAuthor,
    Decision,
    FileChange,
    GitRevision,
    ListedTag,
    ObjectId,
    ObjectKey,
    TagVerdict,
)
from engine.store import inventory, queries
from engine.store.actions import finish_action, start_action
from engine.store.db import Store, open_store
from engine.store.queries import Event, EventSeverity

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "flux-system/flux-system"
URL = "ssh://git@github.com/example/homelab"
KUSTOMIZATION = "flux-system/flux-system"
FIRST = "3f2a9c1d7b4e8a6f0c5d2e1b9a8f7c6d5e4b3a21"
UPDATE = "8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d"
LEDGER_IMAGE = "ghcr.io/example/ledger"
LEDGER_OLD = "20251103-1130-sha-4d5e6f7"
LEDGER_NEW = "20251105-1650-sha-8b9c0d1"

PODINFO = ("6.5.0", "6.5.1", "6.5.2", "6.6.0", "6.6.1", "6.7.0", "7.0.0-rc.1", "latest")
LEDGER = (
    "20251101-0830-sha-1a2b3c4",
    "20251101-1415-sha-2b3c4d5",
    "20251102-0910-sha-3c4d5e6",
    "20251103-1130-sha-4d5e6f7",
    "20251103-1745-sha-5e6f7a8",
    "20251104-0805-sha-6f7a8b9",
    "20251105-1020-sha-7a8b9c0",
    "20251105-1650-sha-8b9c0d1",
    "sha-1a2b3c4",
    "latest",
)
LEDGER_SIGNATURE = "sha256-9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.sig"


def at(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2025, 11, day, hour, minute, second, tzinfo=UTC)


def digest(repository: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()


def ledger_decision(store: Store, scan_id: int, decided_at: datetime, previous: str | None) -> Decision:
    """The ledger policy's verdicts: the newest timestamp wins, bare sha and `latest` never match."""
    dated = sorted(t for t in LEDGER if t[0].isdigit())
    trace = tuple(
        TagVerdict(tag, "selected" if tag == LEDGER_NEW else "lower", tag[:13], rank,
                   "newest timestamp" if tag == LEDGER_NEW else f"{tag[:13]} is older than {LEDGER_NEW[:13]}")
        for rank, tag in enumerate(reversed(dated), start=1)
    ) + tuple(TagVerdict(tag, "filtered", None, None, "does not match the filter")
              for tag in ("latest", "sha-1a2b3c4"))
    return queries.record_decision(store, Decision(
        policy="ledger/ledger", decided_at=decided_at, selected_tag=LEDGER_NEW, previous_tag=previous,
        candidates=len(LEDGER), verdict_counts=(("filtered", 2), ("lower", len(dated) - 1), ("selected", 1)),
        trace=trace, scan_id=scan_id,
    ))


def podinfo_decision(store: Store, scan_id: int | None, decided_at: datetime) -> Decision:
    """`select highest semver ">=6.0.0"`: 7.0.0-rc.1 is a prerelease, `latest` no version at all."""
    releases = [t for t in PODINFO if t[0].isdigit() and "-" not in t]
    trace = tuple(
        TagVerdict(tag, "selected" if rank == 1 else "lower", tag, rank,
                   "highest version in range" if rank == 1 else f"{tag} < {releases[-1]}")
        for rank, tag in enumerate(reversed(releases), start=1)
    ) + (TagVerdict("7.0.0-rc.1", "prerelease-excluded", "7.0.0-rc.1", None,
                    "the range has no prerelease"),
         TagVerdict("latest", "unparsable", None, None, "not a semantic version"))
    return queries.record_decision(store, Decision(
        policy="podinfo/podinfo", decided_at=decided_at, selected_tag=releases[-1], previous_tag=None,
        candidates=len(PODINFO), trace=trace, scan_id=scan_id,
        verdict_counts=(("lower", len(releases) - 1), ("prerelease-excluded", 1), ("selected", 1),
                        ("unparsable", 1)),
    ))


def deployment(namespace: str, name: str) -> ObjectId:
    return ObjectId("apps", "Deployment", namespace, name)


FIRST_OBJECTS = (
    ObjectId("", "Namespace", "", "ledger"),
    ObjectId("", "ConfigMap", "ledger", "ledger-config"),
    deployment("ledger", "ledger"),
    ObjectId("", "Service", "ledger", "ledger"),
    ObjectId("", "Namespace", "", "podinfo"),
    deployment("podinfo", "podinfo"),
    ObjectId("", "Service", "podinfo", "podinfo"),
)


def sync(store: Store, *, revision: str, now: datetime, actions: list[ObjectAction],
         applied: list[ObjectId], pruned: tuple[ObjectId, ...] = ()) -> None:
    """One Kustomization sync as engine/reconcile/cluster.py records it: actions, then inventory."""
    plan_id = hashlib.sha256(f"{revision}{now}".encode()).hexdigest()[:12]
    target = f"Kustomization/{KUSTOMIZATION}"
    action_id = start_action(store, plan_id=plan_id, type="apply", target=target, now=now,
                             payload={"revision": revision, "stage": "objects",
                                      "objects": [a.to_json() for a in actions]})
    inventory.record_applied(store, [
        ClusterObject(KUSTOMIZATION, obj, "v1", revision, digest(revision, str(obj)), now) for obj in applied
    ])
    finish_action(store, action_id, status="done", now=now)
    if pruned:
        action_id = start_action(store, plan_id=plan_id, type="prune", target=target, now=now, payload={
            "revision": revision,
            "objects": [ObjectAction(obj, "v1", Change.PRUNE).to_json() for obj in pruned]})
        inventory.record_pruned(store, KUSTOMIZATION, pruned, now)
        finish_action(store, action_id, status="done", now=now)


def build(output: Path) -> None:
    for stale in (output, output.with_name(output.name + "-wal"), output.with_name(output.name + "-shm")):
        stale.unlink(missing_ok=True)
    with open_store(f"sqlite:///{output.resolve()}") as store:
        record_example(store)
    # One self-contained file: fold the WAL back in and leave rollback-journal mode.
    connection = sqlite3.connect(output)
    try:
        connection.execute("PRAGMA journal_mode = DELETE")
        connection.execute("VACUUM")
    finally:
        connection.close()


def record_example(store: Store) -> None:
    """Write the example's facts into an open store (the view tests replay them on PostgreSQL)."""
    queries.record_git_revision(store, GitRevision(
        source=SOURCE, url=URL, branch="main", sha=FIRST,
        author="Alex Doe <alex@example.com>", message="Add podinfo and ledger",
        committed_at=at(4, 16, 2), fetched_at=at(4, 16, 3),
    ))
    sync(store, revision=f"main@sha1:{FIRST}", now=at(4, 16, 5),
         actions=[ObjectAction(obj, "v1", Change.CREATE) for obj in FIRST_OBJECTS],
         applied=list(FIRST_OBJECTS))
    ledger_tags = [ListedTag(tag, digest("ledger/ledger", tag)) for tag in LEDGER] + [
        ListedTag(LEDGER_SIGNATURE, digest("ledger/ledger", LEDGER_SIGNATURE), excluded=True)]
    first_scan = queries.record_image_scan(store, "ledger/ledger", ledger_tags,
                                           started_at=at(5, 16, 45), finished_at=at(5, 16, 45, 2))
    assert first_scan.id is not None
    ledger_decision(store, first_scan.id, at(5, 16, 45, 3), None)
    second_scan = queries.record_image_scan(store, "ledger/ledger", ledger_tags,
                                            started_at=at(5, 16, 57, 50), finished_at=at(5, 16, 57, 52))
    assert second_scan.id is not None
    decided = ledger_decision(store, second_scan.id, at(5, 16, 57, 53), LEDGER_NEW)
    assert decided.id is not None
    commit = CommitAction(
        source=ObjectKey("GitRepository", "flux-system", "flux-system"), url=URL,
        checkout_branch="main", push_branch="main", automations=("ledger/ledger",),
        author=CommitAuthor("fluxcdbot", "fluxcdbot@users.noreply.github.com"),
        message=f"Update ledger image\n\nGitward-Decision: {decided.id}",
        files=(FileChange("cluster/apps/ledger/deployment.yaml", 20, f"{LEDGER_IMAGE}:{LEDGER_OLD}",
                          f"{LEDGER_IMAGE}:{LEDGER_NEW}", "ledger/ledger", "image"),),
        decisions=(decided.id,),
    )
    action_id = start_action(store, plan_id="5c0ffee1d2e3", type=commit.TYPE, target=commit.target,
                             payload=commit.to_json(), now=at(5, 16, 57, 55))
    finish_action(store, action_id, status="done", now=at(5, 16, 58, 1),
                  payload={"commit": UPDATE, "attempts": 1, "forced": False})
    queries.record_git_revision(store, GitRevision(
        source=SOURCE, url=URL, branch="main", sha=UPDATE,
        author="fluxcdbot <fluxcdbot@users.noreply.github.com>", message=commit.message,
        committed_at=at(5, 16, 58), fetched_at=at(5, 16, 59),
    ))
    podinfo_scan = queries.record_image_scan(
        store, "podinfo/podinfo",
        [ListedTag(tag, digest("podinfo/podinfo", tag)) for tag in PODINFO],
        started_at=at(5, 17, 0), finished_at=at(5, 17, 0, 3),
    )
    podinfo_decision(store, podinfo_scan.id, at(5, 17, 0, 4))
    queries.record_image_scan(store, "ledger/ledger", ledger_tags,
                              started_at=at(5, 17, 0, 5), finished_at=at(5, 17, 0, 7))
    ledger = deployment("ledger", "ledger")
    image_field = "spec.template.spec.containers[name=ledger].image"
    sync(store, revision=f"main@sha1:{UPDATE}", now=at(5, 17, 1),
         actions=[ObjectAction(ledger, "v1", Change.UPDATE, diff=(FieldChange(
             image_field, f"{LEDGER_IMAGE}:{LEDGER_OLD}", f"{LEDGER_IMAGE}:{LEDGER_NEW}"),))],
         applied=[ledger], pruned=(ObjectId("", "ConfigMap", "ledger", "ledger-config"),))
    for event in (
        Event(at(5, 16, 59), "GitRepository", SOURCE, EventSeverity.INFO, "NewArtifact",
              "stored revision main@sha1:8e7d6c5b4a3f"),
        Event(at(5, 17, 0, 3), "ImageRepository", "podinfo/podinfo", EventSeverity.INFO,
              "Succeeded", "successful scan: found 8 tags"),
        Event(at(5, 17, 0, 7), "ImageRepository", "ledger/ledger", EventSeverity.INFO,
              "Succeeded", "successful scan: found 10 tags (1 excluded)"),
        Event(at(5, 17, 1), "Kustomization", SOURCE, EventSeverity.INFO,
              "ReconciliationSucceeded", "applied revision main@sha1:8e7d6c5b4a3f"),
    ):
        queries.record_event(store, event)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "state.db.example"
    build(target)
    print(f"wrote {target}")
