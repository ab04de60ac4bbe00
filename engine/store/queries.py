"""Narrow readers and writers of the state database; ORM rows never leave this package.

Writers take and readers return frozen dataclasses: facts the evaluator shares live in
engine/model.py, bookkeeping (events, suspensions) here. Each writer is one transaction.

Tag history is kept cheap: a rescan that finds what the scan before found writes no row (it
moves that scan's times forward and counts itself in its `runs`), and a tag
row is written only when it changes (appears, vanishes, comes back, changes digest or
exclusion), so `image_tags.last_seen` of a tag still present is the time of its last change;
while `gone_at` is NULL the tag is in the repository's latest successful scan, and `tags()`
reports that scan's `finished_at` as its `last_seen`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, Table, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from engine.clock import utcnow
from engine.redact import public_url
from engine.model import (
    GitRevision,
    ImageScan,
    ListedTag,
    RegistryTag,
    ScanStatus,
)
from engine.store.db import Store, database_error
from engine.store.schema import (
    EventRow,
    GitRevisionRow,
    ImageScanRow,
    ImageTagRow,
    SuspensionRow,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

_CHUNK = 500
"""Ids per `IN (...)` list, well under every dialect's bound-parameter limit."""


class EventSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Event:
    """Something that happened to a rule object (`object_name` is `namespace/name`)."""

    time: datetime
    object_kind: str
    object_name: str
    severity: EventSeverity
    reason: str
    message: str
    id: int | None = None


@dataclass(frozen=True)
class Suspension:
    object_kind: str
    object_name: str
    suspended_at: datetime
    reason: str = ""


_BATCH: ContextVar[tuple[Store, Session] | None] = ContextVar("gitward_store_batch", default=None)
"""The session of the `batch` open in this thread (a context variable: a heartbeat thread
writing to the same store never joins it)."""


@contextmanager
def transaction(store: Store, doing: str = "write to") -> Iterator[Session]:
    """One transaction, committed at the end of the block; inside a `batch` on `store`, the
    batch's (committed with the batch)."""
    joined = _BATCH.get()
    try:
        if joined is not None and joined[0] is store:
            yield joined[1]
            return
        with store.sessions.begin() as session:
            yield session
    except SQLAlchemyError as err:
        raise database_error(store.url, doing, err) from err


@contextmanager
def batch(store: Store) -> Iterator[None]:
    """Every read and write of `store` in the block in one transaction: all committed at its
    end, or none. For a few writes that belong together and run back to back (a scan and its
    event, a repository's decisions): a session per call was much of their cost. Never around
    network calls or long work: on SQLite the first write holds the store's write lock until
    the end, and other writers wait (`BUSY_TIMEOUT_MS`). Nested, it joins the outer one."""
    joined = _BATCH.get()
    if joined is not None and joined[0] is store:
        yield
        return
    with transaction(store) as session:
        token = _BATCH.set((store, session))
        try:
            yield
        finally:
            _BATCH.reset(token)


def dialect_insert(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which knows ON CONFLICT (both supported dialects spell it alike)."""
    target: Table = table.__table__
    if session.get_bind().dialect.name == "postgresql":
        # Imported here: a SQLite store, the usual one, never loads PostgreSQL's dialect (a
        # tenth of a command's start-up); SQLAlchemy loaded SQLite's when it made the engine.
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(target)
    return sqlite.insert(target)


# Git revisions -------------------------------------------------------------------------------


def _revision(row: GitRevisionRow) -> GitRevision:
    return GitRevision(
        source=row.source,
        url=row.url,
        branch=row.branch,
        sha=row.sha,
        fetched_at=row.fetched_at,
        author=row.author,
        message=row.message,
        committed_at=row.committed_at,
        id=row.id,
    )


def _latest_revision_row(session: Session, source: str) -> GitRevisionRow | None:
    return session.scalars(
        select(GitRevisionRow)
        .where(GitRevisionRow.source == source)
        .order_by(GitRevisionRow.fetched_at.desc(), GitRevisionRow.id.desc())
        .limit(1)
    ).first()


def record_git_revision(store: Store, revision: GitRevision) -> GitRevision:
    """Record a fetch; the same commit as last time writes nothing, a revisited one moves to the top."""
    with transaction(store) as session:
        latest = _latest_revision_row(session, revision.source)
        if latest is not None and latest.sha == revision.sha:
            return _revision(latest)
        values = {
            "url": public_url(revision.url),
            "branch": revision.branch,
            "author": revision.author,
            "message": revision.message,
            "committed_at": revision.committed_at,
            "fetched_at": revision.fetched_at,
        }
        statement = dialect_insert(session, GitRevisionRow).values(
            source=revision.source, sha=revision.sha, **values
        )
        session.execute(
            statement.on_conflict_do_update(index_elements=["source", "sha"], set_=values)
        )
        row = session.scalars(
            select(GitRevisionRow).where(
                GitRevisionRow.source == revision.source, GitRevisionRow.sha == revision.sha
            )
        ).one()
        return _revision(row)


def latest_git_revision(store: Store, source: str) -> GitRevision | None:
    with transaction(store, "read") as session:
        row = _latest_revision_row(session, source)
        return _revision(row) if row is not None else None


# Image scans and tags ------------------------------------------------------------------------


def _scan(row: ImageScanRow) -> ImageScan:
    return ImageScan(
        repository=row.repository,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=ScanStatus(row.status),
        tag_count=row.tag_count,
        error=row.error,
        id=row.id,
    )


def _latest_ok_finish(session: Session, repository: str) -> datetime | None:
    query = select(ImageScanRow.finished_at).where(
        ImageScanRow.repository == repository, ImageScanRow.status == ScanStatus.OK.value
    )
    return session.scalars(
        query.order_by(ImageScanRow.finished_at.desc(), ImageScanRow.id.desc()).limit(1)
    ).first()


def record_image_scan(
    store: Store,
    repository: str,
    listed: Sequence[ListedTag],
    *,
    started_at: datetime,
    finished_at: datetime,
    error: str | None = None,
) -> ImageScan:
    """Record one scan and, when it succeeded, the tags' history, in one transaction.

    A failed scan (`error` given) records the failure and touches no tag. `tag_count` counts
    the tags not excluded, as Flux's `lastScanResult.tagCount` does.
    """
    with transaction(store) as session:
        return _record_image_scan(session, repository, listed, started_at=started_at,
                                  finished_at=finished_at, error=error).scan


def record_scan_and_tags(
    store: Store,
    repository: str,
    listed: Sequence[ListedTag],
    *,
    started_at: datetime,
    finished_at: datetime,
    error: str | None = None,
) -> tuple[ImageScan, ImageScan | None, tuple[RegistryTag, ...]]:
    """`record_image_scan`, then what a policy decides on as `scan_and_tags` reads it, in the
    same transaction: (the scan recorded, the repository's latest scan, every tag the ledger
    holds of it). A scan that changed no tag row hands on the rows it compared (sorted by
    code point) instead of reading them again: a steady pass read every tag twice."""
    with transaction(store) as session:
        done = _record_image_scan(session, repository, listed, started_at=started_at,
                                  finished_at=finished_at, error=error)
        scan = done.scan
        # the scan just recorded is the latest unless another started later (a clock set back)
        latest = (replace(scan, new_tags=()) if done.newest else _latest_scan(session, repository))
        if done.unchanged is None:
            return scan, latest, _tags(session, repository, True)
        last_ok = done.last_ok or _latest_ok_finish(session, repository)
        return scan, latest, tuple(
            _registry_tag(repository, last_ok, tag, first_seen, last_seen, digest, gone_at, excluded)
            for _, tag, digest, excluded, gone_at, first_seen, last_seen
            in sorted(done.unchanged, key=itemgetter(1)))


def _latest_scan(session: Session, repository: str) -> ImageScan | None:
    row = session.scalars(
        select(ImageScanRow).where(ImageScanRow.repository == repository)
        .order_by(ImageScanRow.started_at.desc(), ImageScanRow.id.desc()).limit(1)
    ).first()
    return _scan(row) if row is not None else None


@dataclass(frozen=True)
class _Recorded:
    """A scan as `_record_image_scan` recorded it, with what it learned on the way."""

    scan: ImageScan
    unchanged: Sequence[Any] | None
    """The repository's tag rows as read, when the scan changed none (else None)."""
    newest: bool
    """No other scan of the repository started after this one (it is the latest)."""
    last_ok: datetime | None
    """When the latest successful scan finished, when that is known without a query."""


def _record_image_scan(
    session: Session,
    repository: str,
    listed: Sequence[ListedTag],
    *,
    started_at: datetime,
    finished_at: datetime,
    error: str | None,
) -> _Recorded:
    """The scan recorded, and what the reads it made tell of the repository's scans after it."""
    if error is not None and listed:
        raise ValueError("a failed scan lists no tags")
    by_tag = {item.tag: item for item in listed}
    ok = error is None
    status = (ScanStatus.OK if ok else ScanStatus.FAILED).value
    tag_count = sum(1 for item in by_tag.values() if not item.excluded) if ok else 0
    # A write that changes nothing comes first: on SQLite it takes the write lock before
    # any read, so a concurrent writer waits instead of failing to upgrade its lock.
    session.execute(update(ImageScanRow).where(ImageScanRow.id.is_(None))
                    .values(runs=ImageScanRow.runs).execution_options(synchronize_session=False))
    last = session.scalars(
        select(ImageScanRow).where(ImageScanRow.repository == repository)
        .order_by(ImageScanRow.started_at.desc(), ImageScanRow.id.desc()).limit(1)
    ).first()
    new: tuple[str, ...] = ()
    rows: Sequence[Any] | None = None
    last_ok: datetime | None = None
    if ok:
        previous = _latest_ok_finish(session, repository)
        new, rows = _merge_tags(session, repository, by_tag, seen=finished_at, previous=previous)
        # this scan is the latest successful one, unless the clock went back since `previous`
        last_ok = finished_at if previous is None or previous <= finished_at else None
    changed = ok and rows is None
    newest = last is None or last.started_at <= started_at
    if (not changed and last is not None and last.started_at <= started_at
            and (last.status, last.error, last.tag_count) == (status, error, tag_count)):
        # The same as the scan before: that row stands for both (see ImageScanRow).
        last.started_at, last.finished_at, last.runs = started_at, finished_at, last.runs + 1
        session.flush()
        return _Recorded(_scan(last), rows, newest, last_ok)
    scan = ImageScanRow(repository=repository, started_at=started_at, finished_at=finished_at,
                        status=status, tag_count=tag_count, error=error, since=started_at,
                        runs=1)
    session.add(scan)
    session.flush()
    return _Recorded(replace(_scan(scan), new_tags=new), rows, newest, last_ok)


def _merge_tags(
    session: Session,
    repository: str,
    listed: dict[str, ListedTag],
    *,
    seen: datetime,
    previous: datetime | None,
) -> tuple[tuple[str, ...], Sequence[Any] | None]:
    """Write only the tag rows whose state changed (see the module docstring); returns the tags
    that are new to the repository or came back, sorted, and the rows as read when none
    changed (None when some did)."""
    rows = session.connection().execute(
        select(
            ImageTagRow.id, ImageTagRow.tag, ImageTagRow.digest, ImageTagRow.excluded, ImageTagRow.gone_at,
            ImageTagRow.first_seen, ImageTagRow.last_seen,
        ).where(ImageTagRow.repository == repository)
    ).all()  # plain rows: the ORM's handling of each cost more than the comparison below
    existing = {row[1]: row for row in rows}  # by position: a Row's attributes cost more
    fresh: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for tag, item in listed.items():
        row = existing.get(tag)
        if row is None:
            fresh.append(
                {"repository": repository, "tag": tag, "digest": item.digest, "first_seen": seen,
                 "last_seen": seen, "gone_at": None, "excluded": item.excluded}
            )
            continue
        row_id, _, row_digest, row_excluded, gone_at, _, _ = row
        digest = item.digest if item.digest is not None else row_digest
        if gone_at is not None:
            changed.append(
                {"id": row_id, "digest": digest, "excluded": item.excluded, "first_seen": seen,
                 "last_seen": seen, "gone_at": None}
            )
        elif digest != row_digest or item.excluded != row_excluded:
            changed.append({"id": row_id, "digest": digest, "excluded": item.excluded, "last_seen": seen})
    if fresh:
        session.execute(
            dialect_insert(session, ImageTagRow).on_conflict_do_nothing(index_elements=["repository", "tag"]),
            fresh,
        )
    for keys in ({"id", "digest", "excluded", "first_seen", "last_seen", "gone_at"},
                 {"id", "digest", "excluded", "last_seen"}):
        batch = [values for values in changed if values.keys() == keys]
        if batch:
            session.execute(update(ImageTagRow), batch)
    gone = [row[0] for tag, row in existing.items() if row[4] is None and tag not in listed]
    vanish: dict[str, Any] = {"gone_at": seen}
    if previous is not None:
        vanish["last_seen"] = previous
    for start in range(0, len(gone), _CHUNK):
        session.execute(
            update(ImageTagRow)
            .where(ImageTagRow.id.in_(gone[start : start + _CHUNK]))
            .values(**vanish)
            .execution_options(synchronize_session=False)
        )
    back = (tag for tag, row in existing.items() if row[4] is not None and tag in listed)
    new = tuple(sorted([*(values["tag"] for values in fresh), *back]))
    return new, None if fresh or changed or gone else rows


def latest_scan(store: Store, repository: str, *, status: ScanStatus | None = None) -> ImageScan | None:
    """The repository's most recent scan, or its most recent one with `status`."""
    query = select(ImageScanRow).where(ImageScanRow.repository == repository)
    if status is not None:
        query = query.where(ImageScanRow.status == status.value)
    with transaction(store, "read") as session:
        row = session.scalars(
            query.order_by(ImageScanRow.started_at.desc(), ImageScanRow.id.desc()).limit(1)
        ).first()
        return _scan(row) if row is not None else None


def scans(store: Store, repository: str, *, limit: int = 50) -> tuple[ImageScan, ...]:
    """The repository's most recent scans, newest first, failed ones with their error."""
    query = (select(ImageScanRow).where(ImageScanRow.repository == repository)
             .order_by(ImageScanRow.started_at.desc(), ImageScanRow.id.desc()).limit(limit))
    with transaction(store, "read") as session:
        return tuple(_scan(row) for row in session.scalars(query))


def tags(store: Store, repository: str, *, include_gone: bool = False) -> tuple[RegistryTag, ...]:
    """The repository's tags sorted by name, excluded ones flagged; gone ones on request."""
    with transaction(store, "read") as session:
        return _tags(session, repository, include_gone)


def scan_and_tags(store: Store, repository: str) -> tuple[ImageScan | None, tuple[RegistryTag, ...]]:
    """What a policy decides on, read at once: the repository's latest scan (`latest_scan`) and
    every tag the ledger holds of it, gone ones too (`tags`)."""
    with transaction(store, "read") as session:
        return _latest_scan(session, repository), _tags(session, repository, True)


def _registry_tag(repository: str, last_ok: datetime | None, tag: str, first_seen: datetime,
                  last_seen: datetime, digest: str | None, gone_at: datetime | None,
                  excluded: bool) -> RegistryTag:
    """A tag row as readers see it: a tag still listed was last seen by the latest successful
    scan (`last_ok`; its row is updated only when it changes), a gone one when it went."""
    return RegistryTag(repository, tag, first_seen,
                       last_seen if gone_at is not None or last_ok is None else last_ok,
                       digest, gone_at, excluded)


def _tags(session: Session, repository: str, include_gone: bool) -> tuple[RegistryTag, ...]:
    """Read as plain rows, not ORM objects: a policy decision reads every tag of its repository
    each interval, and an ORM object per tag cost most of a fleet pass."""
    query = select(ImageTagRow.tag, ImageTagRow.first_seen, ImageTagRow.last_seen,
                   ImageTagRow.digest, ImageTagRow.gone_at, ImageTagRow.excluded
                   ).where(ImageTagRow.repository == repository)
    if not include_gone:
        query = query.where(ImageTagRow.gone_at.is_(None))
    latest = _latest_ok_finish(session, repository)
    rows = session.connection().execute(query.order_by(ImageTagRow.tag)).all()
    return tuple(_registry_tag(repository, latest, tag, first_seen, last_seen, digest, gone_at, excluded)
                 for tag, first_seen, last_seen, digest, gone_at, excluded in rows)


# Events --------------------------------------------------------------------------------------


def _event(row: EventRow) -> Event:
    return Event(
        time=row.time,
        object_kind=row.object_kind,
        object_name=row.object_name,
        severity=EventSeverity(row.severity),
        reason=row.reason,
        message=row.message,
        id=row.id,
    )


def record_event(store: Store, event: Event) -> Event:
    with transaction(store) as session:
        row = EventRow(
            time=event.time,
            object_kind=event.object_kind,
            object_name=event.object_name,
            severity=event.severity.value,
            reason=event.reason,
            message=event.message,
        )
        session.add(row)
        session.flush()
        return _event(row)


def _events_matching(query: Select[EventRow], object_kind: str | None,
                     object_name: str | None, since: datetime | None) -> Select[EventRow]:
    """`query` narrowed to the events of a kind, an object and a time, where given."""
    if object_kind is not None:
        query = query.where(EventRow.object_kind == object_kind)
    if object_name is not None:
        query = query.where(EventRow.object_name == object_name)
    if since is not None:
        query = query.where(EventRow.time >= since)
    return query


def list_events(
    store: Store,
    *,
    object_kind: str | None = None,
    object_name: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> tuple[Event, ...]:
    """The most recent `limit` events matching the filters, oldest first."""
    query = _events_matching(select(EventRow), object_kind, object_name, since)
    query = query.order_by(EventRow.time.desc(), EventRow.id.desc()).limit(limit)
    with transaction(store, "read") as session:
        return tuple(reversed([_event(row) for row in session.scalars(query)]))


def latest_event(store: Store, *, object_kind: str, object_name: str, reason: str) -> Event | None:
    """The object's most recent event with `reason` (what it last said about that)."""
    query = (_events_matching(select(EventRow), object_kind, object_name, None)
             .where(EventRow.reason == reason)
             .order_by(EventRow.time.desc(), EventRow.id.desc()).limit(1))
    with transaction(store, "read") as session:
        row = session.scalars(query).first()
        return _event(row) if row is not None else None


# Suspensions ---------------------------------------------------------------------------------


def _suspension(row: SuspensionRow) -> Suspension:
    return Suspension(row.object_kind, row.object_name, row.suspended_at, row.reason)


def suspend(
    store: Store, object_kind: str, object_name: str, *, reason: str = "", at: datetime | None = None
) -> Suspension:
    """Suspend an object; suspending it again keeps the original time and updates a given reason."""
    with transaction(store) as session:
        row = session.get(SuspensionRow, (object_kind, object_name))
        if row is None:
            row = SuspensionRow(
                object_kind=object_kind,
                object_name=object_name,
                suspended_at=at or utcnow(),
                reason=reason,
            )
            session.add(row)
        elif reason:
            row.reason = reason
        session.flush()
        return _suspension(row)


def resume(store: Store, object_kind: str, object_name: str) -> bool:
    """Lift a suspension; False when the object was not suspended."""
    with transaction(store) as session:
        row = session.get(SuspensionRow, (object_kind, object_name))
        if row is None:
            return False
        session.delete(row)
        return True


def is_suspended(store: Store, object_kind: str, object_name: str) -> bool:
    with transaction(store, "read") as session:
        return session.get(SuspensionRow, (object_kind, object_name)) is not None


def list_suspensions(store: Store) -> tuple[Suspension, ...]:
    with transaction(store, "read") as session:
        rows = session.scalars(
            select(SuspensionRow).order_by(SuspensionRow.object_kind, SuspensionRow.object_name)
        )
        return tuple(_suspension(row) for row in rows)


def events_after(
    store: Store,
    after_id: int = 0,
    *,
    object_kind: str | None = None,
    object_name: str | None = None,
    since: datetime | None = None,
) -> tuple[Event, ...]:
    """Every event with an id above `after_id` matching the filters, oldest first (for following)."""
    query = _events_matching(select(EventRow).where(EventRow.id > after_id), object_kind,
                             object_name, since)
    with transaction(store, "read") as session:
        return tuple(_event(row) for row in session.scalars(query.order_by(EventRow.time, EventRow.id)))
