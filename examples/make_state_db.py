"""Build `state.db.example`: a migrated state database with a few facts about the example repo.

Every timestamp is fixed, so running this again produces the same content; docs/sql.md's audit
queries run against it. Usage: `python examples/make_state_db.py [OUTPUT]` (default: the
repository root's `state.db.example`).
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.model import GitRevision, ListedTag
from engine.store import queries
from engine.store.db import open_store
from engine.store.queries import Event, EventSeverity

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "flux-system/flux-system"
URL = "ssh://git@github.com/example/homelab"

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


def build(output: Path) -> None:
    for stale in (output, output.with_name(output.name + "-wal"), output.with_name(output.name + "-shm")):
        stale.unlink(missing_ok=True)
    with open_store(f"sqlite:///{output.resolve()}") as store:
        queries.record_git_revision(store, GitRevision(
            source=SOURCE, url=URL, branch="main",
            sha="3f2a9c1d7b4e8a6f0c5d2e1b9a8f7c6d5e4b3a21",
            author="Alex Doe <alex@example.com>", message="Add podinfo and ledger",
            committed_at=at(4, 16, 2), fetched_at=at(4, 16, 3),
        ))
        queries.record_git_revision(store, GitRevision(
            source=SOURCE, url=URL, branch="main",
            sha="8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d",
            author="fluxcdbot <fluxcdbot@users.noreply.github.com>",
            message="Update container images\n\nledger/ledger: 20251105-1650-sha-8b9c0d1",
            committed_at=at(5, 16, 58), fetched_at=at(5, 16, 59),
        ))
        queries.record_image_scan(
            store, "podinfo/podinfo",
            [ListedTag(tag, digest("podinfo/podinfo", tag)) for tag in PODINFO],
            started_at=at(5, 17, 0), finished_at=at(5, 17, 0, 3),
        )
        queries.record_image_scan(
            store, "ledger/ledger",
            [ListedTag(tag, digest("ledger/ledger", tag)) for tag in LEDGER]
            + [ListedTag(LEDGER_SIGNATURE, digest("ledger/ledger", LEDGER_SIGNATURE), excluded=True)],
            started_at=at(5, 17, 0, 5), finished_at=at(5, 17, 0, 7),
        )
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
    # One self-contained file: fold the WAL back in and leave rollback-journal mode.
    connection = sqlite3.connect(output)
    try:
        connection.execute("PRAGMA journal_mode = DELETE")
        connection.execute("VACUUM")
    finally:
        connection.close()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "state.db.example"
    build(target)
    print(f"wrote {target}")
