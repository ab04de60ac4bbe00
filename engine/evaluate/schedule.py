"""When each object of a running gitward is next reconciled: intervals, jitter, backoff.

Pure bookkeeping so the controller loop can be tested with a fake clock: the caller says what
time it is and how a reconcile went; the schedule says which object is due next. Jitter (+-10%
of every delay) keeps objects with the same interval from firing in lockstep; it is drawn from
the `random.Random` the caller injects, so a seeded schedule is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from engine.model import ObjectKey

JITTER = 0.1
"""Every delay is scaled by a factor drawn uniformly from [1 - JITTER, 1 + JITTER]."""


class Outcome(StrEnum):
    """How one reconcile ended, as the schedule needs it."""

    OK = "ok"
    FAILED = "failed"
    HELD = "held"  # another gitward holds the object's lease: not a failure, try next interval


@dataclass(frozen=True)
class Entry:
    """An object to reconcile: its interval, and the first delay after a failure."""

    key: ObjectKey
    interval: timedelta
    retry_interval: timedelta


@dataclass
class _Slot:
    entry: Entry
    due: datetime
    failures: int = 0


class Schedule:
    """The next due time of every object; the earliest due object goes first.

    Objects start due at `start`, in the order given (ties keep that order), or at their
    `not_before` time when that is later (work a previous run did recently). A failure waits
    `retry_interval * 2**(failures - 1)`, capped at the interval; a permanent one (it needs a
    fix: engine/errors.py RetryableError) waits the interval; a success resets the count.
    """

    def __init__(self, entries: Iterable[Entry], start: datetime, rng: random.Random,
                 not_before: Mapping[ObjectKey, datetime] | None = None) -> None:
        self._rng = rng
        self._slots: dict[ObjectKey, _Slot] = {}
        later = not_before or {}
        for entry in entries:
            if entry.key in self._slots:
                raise ValueError(f"{entry.key} is scheduled twice")
            self._slots[entry.key] = _Slot(entry, max(start, later.get(entry.key, start)))

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        return key in self._slots

    def hurry(self, key: ObjectKey, now: datetime) -> None:
        """Make `key` due at `now` at the latest (a reconcile request); its failures count on."""
        slot = self._slots[key]
        slot.due = min(slot.due, now)

    def replace(self, entries: Iterable[Entry], now: datetime) -> None:
        """Schedule `entries` instead (the rules changed): objects kept keep their due time and
        failures, new ones are due at `now`, the others are dropped."""
        slots: dict[ObjectKey, _Slot] = {}
        for entry in entries:
            if entry.key in slots:
                raise ValueError(f"{entry.key} is scheduled twice")
            kept = self._slots.get(entry.key)
            slots[entry.key] = (_Slot(entry, kept.due, kept.failures) if kept is not None
                                else _Slot(entry, now))
        self._slots = slots

    def due(self, now: datetime, suspended: Collection[ObjectKey] = ()) -> ObjectKey | None:
        """The object due earliest at or before `now`, suspended ones left out; None if none is."""
        slot = self._earliest(suspended)
        return slot.entry.key if slot is not None and slot.due <= now else None

    def next_due_at(self, suspended: Collection[ObjectKey] = ()) -> datetime | None:
        """When the next object not suspended falls due (None when every object is suspended)."""
        slot = self._earliest(suspended)
        return slot.due if slot is not None else None

    def failures(self, key: ObjectKey) -> int:
        """Failures in a row of `key` since its last success."""
        return self._slots[key].failures

    def record(self, key: ObjectKey, now: datetime, outcome: Outcome, *,
               permanent: bool = False) -> datetime:
        """Record how `key`'s reconcile at `now` went (`permanent`: a failure that retrying
        cannot heal); returns when it is due again."""
        slot = self._slots[key]
        entry = slot.entry
        if outcome is Outcome.FAILED:
            slot.failures += 1
            delay = entry.interval if permanent else min(
                entry.retry_interval * 2 ** (slot.failures - 1), entry.interval)
        else:
            if outcome is Outcome.OK:
                slot.failures = 0
            delay = entry.interval
        slot.due = now + self._jittered(delay)
        return slot.due

    def _jittered(self, delay: timedelta) -> timedelta:
        return delay * self._rng.uniform(1 - JITTER, 1 + JITTER)

    def _earliest(self, suspended: Collection[ObjectKey]) -> _Slot | None:
        earliest: _Slot | None = None
        for slot in self._slots.values():
            if slot.entry.key in suspended:
                continue
            if earliest is None or slot.due < earliest.due:
                earliest = slot
        return earliest
