"""Leases on real databases: one SQLite file and a throw-away PostgreSQL, raced by threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect

from engine.store import queries
from engine.store.db import Store, open_store
from engine.store.migrate import alembic_config
from engine.store.leases import (
    Lease,
    LeaseHeld,
    acquire_lease,
    git_lease_name,
    hold_lease,
    list_leases,
    release_lease,
    renew_lease,
)
from engine.store.queries import Event, EventSeverity

T0 = datetime(2025, 11, 1, 8, 30, tzinfo=UTC)
TTL = timedelta(minutes=5)
NAME = "git:ssh://git@github.com/example/homelab#main"
RACE_NAMES = [f"git:file:///srv/repo{i}.git#main" for i in range(25)]


def test_an_older_database_gains_the_leases_table_and_keeps_its_rows(url: str) -> None:
    with open_store(url) as store, store.engine.begin() as connection:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0001")
    with open_store(url, upgrade=False) as store:
        assert "leases" not in inspect(store.engine).get_table_names()
        queries.record_event(store, Event(T0, "GitRepository", "a/b", EventSeverity.INFO, "Fetched", "m"))
    with open_store(url) as store:
        assert "leases" in inspect(store.engine).get_table_names()
        assert [e.reason for e in queries.list_events(store)] == ["Fetched"]
        assert acquire_lease(store, NAME, "a", TTL, T0)


def test_a_free_lease_is_taken_and_a_held_one_refused(store: Store) -> None:
    assert acquire_lease(store, NAME, "gitward-a", TTL, T0)
    assert not acquire_lease(store, NAME, "gitward-b", TTL, T0 + timedelta(minutes=1))
    assert not acquire_lease(store, NAME, "gitward-a", TTL, T0 + timedelta(minutes=1))  # not re-entrant
    assert list_leases(store) == (Lease(NAME, "gitward-a", T0, T0 + TTL),)


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    assert acquire_lease(store, NAME, "gitward-a", TTL, T0)
    later = T0 + TTL
    assert acquire_lease(store, NAME, "gitward-b", TTL, later)
    (lease,) = list_leases(store)
    assert lease == Lease(NAME, "gitward-b", later, later + TTL) and not lease.expired(later)
    assert lease.expired(later + TTL)


def test_only_the_holder_renews_or_releases(store: Store) -> None:
    assert acquire_lease(store, NAME, "gitward-a", TTL, T0)
    half = T0 + TTL / 2
    assert renew_lease(store, NAME, "gitward-a", TTL, half)
    assert not renew_lease(store, NAME, "gitward-b", TTL, half)
    assert not acquire_lease(store, NAME, "gitward-b", TTL, T0 + TTL)  # renewed: not expired yet
    assert not release_lease(store, NAME, "gitward-b")
    assert list_leases(store)[0].expires_at == half + TTL
    assert release_lease(store, NAME, "gitward-a")
    assert list_leases(store) == ()
    assert acquire_lease(store, NAME, "gitward-b", TTL, T0)


def test_a_taken_over_lease_cannot_be_renewed_by_its_old_holder(store: Store) -> None:
    assert acquire_lease(store, NAME, "gitward-a", TTL, T0)
    assert acquire_lease(store, NAME, "gitward-b", TTL, T0 + TTL * 2)
    assert not renew_lease(store, NAME, "gitward-a", TTL, T0 + TTL * 2)
    assert not release_lease(store, NAME, "gitward-a")
    assert [lease.holder for lease in list_leases(store)] == ["gitward-b"]


def test_hold_lease_holds_for_the_block_and_releases_after(store: Store) -> None:
    with hold_lease(store, NAME, "gitward-a", TTL, T0) as lease:
        assert lease == Lease(NAME, "gitward-a", T0, T0 + TTL)
        with pytest.raises(LeaseHeld) as caught:
            with hold_lease(store, NAME, "gitward-b", TTL, T0 + timedelta(seconds=10)):
                pytest.fail("a held lease was granted twice")
        assert str(caught.value) == (
            f"another gitward (gitward-a) is writing to {NAME} until 2025-11-01T08:35:00+00:00"
        )
        assert caught.value.lease == lease
    assert list_leases(store) == ()


def test_hold_lease_releases_when_the_block_fails(store: Store) -> None:
    with pytest.raises(RuntimeError, match="push failed"):
        with hold_lease(store, NAME, "gitward-a", TTL, T0):
            raise RuntimeError("push failed")
    assert list_leases(store) == ()


def test_lease_names_carry_no_credentials() -> None:
    assert git_lease_name("https://x-access-token:ghp_secret@github.com/o/r.git", "main") == (
        "git:https://github.com/o/r.git#main"
    )
    assert git_lease_name("ssh://git@github.com/example/homelab", "image-updates") == (
        "git:ssh://git@github.com/example/homelab#image-updates"
    )


# Races: exactly one winner per name, whatever the interleaving -------------------------------


def _race(url: str, holder: str, barrier: Any, names: list[str]) -> list[str]:
    """Open a store of our own, then try every name right after all racers reach the barrier."""
    won: list[str] = []
    with open_store(url) as store:
        for name in names:
            barrier.wait()
            if acquire_lease(store, name, holder, TTL, T0):
                won.append(name)
    return won


def _race_in_process(url: str, holder: str, barrier: Any, names: list[str], results: Any) -> None:
    results.put((holder, _race(url, holder, barrier, names)))


def _assert_one_winner_each(store: Store, won: dict[str, list[str]]) -> None:
    winners = {name: [holder for holder, names in won.items() if name in names] for name in RACE_NAMES}
    assert all(len(holders) == 1 for holders in winners.values()), winners
    assert {lease.name: lease.holder for lease in list_leases(store)} == {
        name: holders[0] for name, holders in winners.items()
    }


def test_racing_threads_get_exactly_one_winner_per_lease(store: Store) -> None:
    holders = [f"thread-{i}" for i in range(4)]
    barrier = threading.Barrier(len(holders))
    won: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def racer(holder: str) -> None:
        try:
            won[holder] = _race(store.url, holder, barrier, RACE_NAMES)
        except BaseException as err:  # surfaced below: a thread's exception is otherwise lost
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=racer, args=(holder,)) for holder in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    _assert_one_winner_each(store, won)


def test_racing_processes_get_exactly_one_winner_per_lease(store: Store) -> None:
    context = multiprocessing.get_context("spawn")
    holders = ["process-a", "process-b"]
    barrier = context.Barrier(len(holders))
    results = context.Queue()
    processes = [
        context.Process(target=_race_in_process, args=(store.url, holder, barrier, RACE_NAMES, results))
        for holder in holders
    ]
    for process in processes:
        process.start()
    won = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    _assert_one_winner_each(store, won)
