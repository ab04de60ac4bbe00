"""Git sources: fetch a GitRepository's ref and record the revision it resolved to.

A fetch that finds the commit recorded last time writes nothing to `git_revisions` and no
event; a new (or revisited) commit writes its row and a `NewRevision` event; a failure writes
a `GitOperationFailed` event carrying the redacted message. Credentials are parameters that
reach git only: the store keeps the URL without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.model import GitRevision, GitSource
from engine.observe.git import Checkout, SourceError, fetch_source
from engine.reconcile.images import Clock, utcnow
from engine.store import queries
from engine.store.db import Store

NEW_REVISION = "NewRevision"
FETCH_FAILED = "GitOperationFailed"


@dataclass(frozen=True)
class SourceOutcome:
    """What one reconciliation of a source found: a checkout and its recorded row, or an error."""

    source: GitSource
    checkout: Checkout | None = None
    revision: GitRevision | None = None
    changed: bool = False
    error: SourceError | None = None


def reconcile_source(store: Store, source: GitSource, *, cache_dir: Path,
                     ssh_command: str | None = None, token: str | None = None,
                     clock: Clock = utcnow) -> SourceOutcome:
    """Fetch the source and record its revision; a failure is recorded and returned, not raised."""
    name = source.key.ref
    previous = queries.latest_git_revision(store, name)
    try:
        checkout = fetch_source(source, cache_dir=cache_dir, ssh_command=ssh_command, token=token)
    except SourceError as err:
        queries.record_event(store, queries.Event(
            time=clock(), object_kind=source.KIND, object_name=name,
            severity=queries.EventSeverity.ERROR, reason=FETCH_FAILED, message=str(err)))
        return SourceOutcome(source, error=err)
    recorded = queries.record_git_revision(store, GitRevision(
        source=name, url=source.url, branch=checkout.branch, sha=checkout.sha,
        fetched_at=clock(), author=checkout.author, message=checkout.message,
        committed_at=checkout.committed_at))
    changed = previous is None or previous.sha != checkout.sha
    if changed:
        queries.record_event(store, queries.Event(
            time=clock(), object_kind=source.KIND, object_name=name,
            severity=queries.EventSeverity.INFO, reason=NEW_REVISION,
            message=f"fetched revision {checkout.revision}: '{checkout.subject}'"))
    return SourceOutcome(source, checkout, recorded, changed)
