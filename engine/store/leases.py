"""Leases: one writer per name at a time, even with several gitward processes on one state database.

A lease is a row of `leases` with a holder and an expiry. Taking one needs no lock of our own:
an INSERT that does nothing when the name exists, then an UPDATE that matches only an expired
row, each atomic on SQLite (one writer at a time) and on PostgreSQL (a conflicting INSERT waits
for the other transaction; a concurrent UPDATE re-checks its WHERE on the row it waited for), so
the row counts say who won. A holder that dies leaves its lease to expire.

Holders must be unique per writer (host, pid and a random suffix, say): a lease is not
re-entrant, and a holder taking a lease it already holds is refused like anyone else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Executable, delete, select, update
from sqlalchemy.orm import Session

from engine.errors import GitwardError
from engine.store.db import Store
from engine.redact import public_url
from engine.store.queries import dialect_insert, transaction
from engine.store.schema import LeaseRow


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now


class LeaseHeld(GitwardError):
    """Another writer holds the lease: a temporary failure, over by `lease.expires_at` at the latest."""

    def __init__(self, name: str, lease: Lease | None) -> None:
        if lease is None:
            message = f"another gitward is writing to {name}"
        else:
            until = lease.expires_at.isoformat(timespec="seconds")
            message = f"another gitward ({lease.holder}) is writing to {name} until {until}"
        super().__init__(message)
        self.name = name
        self.lease = lease


DAEMON_PREFIX = "daemon:"
"""Lease names of running `gitward run` processes: `daemon:<holder>`, renewed while they run."""


def git_lease_name(url: str, branch: str) -> str:
    """`git:<url>#<branch>`, the URL without credentials (lease names are stored)."""
    return f"git:{public_url(url)}#{branch}"


def _lease(row: LeaseRow) -> Lease:
    return Lease(row.name, row.holder, row.acquired_at, row.expires_at)


def _find(session: Session, name: str) -> Lease | None:
    row = session.get(LeaseRow, name)
    return _lease(row) if row is not None else None


def acquire_lease(store: Store, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
    """Take the lease `name` until `now + ttl` if nobody holds it or its holder's time is up."""
    values = {"holder": holder, "acquired_at": now, "expires_at": now + ttl}
    with transaction(store) as session:
        insert = dialect_insert(session, LeaseRow).values(name=name, **values)
        if _changed(session, insert.on_conflict_do_nothing(index_elements=["name"]).returning(LeaseRow.name)):
            return True
        return _changed(session, update(LeaseRow).where(LeaseRow.name == name, LeaseRow.expires_at <= now)
                        .values(**values).returning(LeaseRow.name))


def renew_lease(store: Store, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
    """Extend a lease `holder` still holds to `now + ttl`; False once someone else has taken it."""
    with transaction(store) as session:
        return _changed(session, update(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder)
                        .values(expires_at=now + ttl).returning(LeaseRow.name))


def release_lease(store: Store, name: str, holder: str) -> bool:
    """Give the lease back; False when `holder` did not hold it (expired and taken, or never held)."""
    with transaction(store) as session:
        return _changed(session, delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder)
                        .returning(LeaseRow.name))


def _changed(session: Session, statement: Executable) -> bool:
    """Whether a `... RETURNING` statement wrote a row (psycopg gives SQLAlchemy no rowcount for
    `INSERT ... ON CONFLICT DO NOTHING`, so counts are not used)."""
    return session.connection().execute(statement).first() is not None


def list_leases(store: Store) -> tuple[Lease, ...]:
    """Every lease row by name, expired ones included (`Lease.expired` tells them apart)."""
    with transaction(store, "read") as session:
        return tuple(_lease(row) for row in session.scalars(select(LeaseRow).order_by(LeaseRow.name)))


def find_lease(store: Store, name: str) -> Lease | None:
    """The lease row `name`, expired or not; None when nobody has taken it."""
    with transaction(store, "read") as session:
        return _find(session, name)


def running_daemons(store: Store, now: datetime) -> tuple[Lease, ...]:
    """The `gitward run` processes serving this store: their unexpired `daemon:` leases."""
    with transaction(store, "read") as session:
        rows = session.scalars(select(LeaseRow).where(LeaseRow.name.startswith(DAEMON_PREFIX),
                                                      LeaseRow.expires_at > now)
                               .order_by(LeaseRow.acquired_at))
        return tuple(_lease(row) for row in rows)


@contextmanager
def hold_lease(store: Store, name: str, holder: str, ttl: timedelta, now: datetime) -> Iterator[Lease]:
    """Hold the lease `name` for the block, releasing it after; `LeaseHeld` when another has it.

    A block that may outlive `ttl` renews with `renew_lease`.
    """
    if not acquire_lease(store, name, holder, ttl, now):
        with transaction(store, "read") as session:
            raise LeaseHeld(name, _find(session, name))
    try:
        yield Lease(name, holder, now, now + ttl)
    finally:
        release_lease(store, name, holder)
