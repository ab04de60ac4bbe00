"""The controller loop's schedule on a fake clock: due order, jitter bounds, backoff, suspension."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import GitwardError
from engine.evaluate.schedule import JITTER, Entry, Outcome, Schedule
from engine.model import ObjectKey
from engine.observe.git import SourceError
from engine.observe.registryhttp import RegistryError
from engine.reconcile.loop import Result

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SOURCE = ObjectKey("GitRepository", "flux-system", "flux-system")
IMAGES = ObjectKey("ImageRepository", "podinfo", "podinfo")
APPS = ObjectKey("Kustomization", "flux-system", "apps")


def entries() -> list[Entry]:
    return [Entry(SOURCE, timedelta(minutes=1), timedelta(minutes=1)),
            Entry(IMAGES, timedelta(minutes=5), timedelta(minutes=5)),
            Entry(APPS, timedelta(minutes=10), timedelta(seconds=30))]


def schedule(seed: int = 1) -> Schedule:
    return Schedule(entries(), T0, random.Random(seed))


def test_every_object_is_due_at_start_in_the_order_given() -> None:
    s = schedule()
    seen = []
    while (key := s.due(T0)) is not None:
        seen.append(key)
        s.record(key, T0, Outcome.OK)
    assert seen == [SOURCE, IMAGES, APPS]


def test_the_earliest_due_object_goes_first_and_none_before_its_time() -> None:
    s = schedule()
    for key in (SOURCE, IMAGES, APPS):
        s.record(key, T0, Outcome.OK)
    assert s.due(T0 + timedelta(seconds=50)) is None
    assert s.due(T0 + timedelta(seconds=70)) == SOURCE
    next_at = s.next_due_at()
    assert next_at is not None and T0 + timedelta(seconds=54) <= next_at <= T0 + timedelta(seconds=66)


@pytest.mark.parametrize("seed", range(20))
def test_jitter_stays_within_ten_percent_and_varies(seed: int) -> None:
    s = Schedule([Entry(SOURCE, timedelta(minutes=10), timedelta(minutes=10))], T0,
                 random.Random(seed))
    delays = []
    now = T0
    for _ in range(20):
        due = s.record(SOURCE, now, Outcome.OK)
        delays.append(due - now)
        now = due
    low, high = timedelta(minutes=10) * (1 - JITTER), timedelta(minutes=10) * (1 + JITTER)
    assert all(low <= d <= high for d in delays)
    assert len(set(delays)) > 1


def test_a_seeded_schedule_is_reproducible() -> None:
    a, b = schedule(7), schedule(7)
    assert [a.record(SOURCE, T0, Outcome.OK) for _ in range(5)] == \
        [b.record(SOURCE, T0, Outcome.OK) for _ in range(5)]


def test_failures_back_off_exponentially_from_the_retry_interval_capped_at_the_interval() -> None:
    s = schedule()
    delays = [s.record(APPS, T0, Outcome.FAILED) - T0 for _ in range(7)]
    expected = [timedelta(seconds=30 * 2 ** n) for n in range(5)] + [timedelta(minutes=10)] * 2
    assert all(abs(d / e - 1) <= JITTER for d, e in zip(delays, expected, strict=True))
    assert s.failures(APPS) == 7


def test_a_success_resets_the_backoff_and_a_held_lease_keeps_it() -> None:
    s = schedule()
    for _ in range(3):
        s.record(APPS, T0, Outcome.FAILED)
    s.record(APPS, T0, Outcome.HELD)
    assert s.failures(APPS) == 3
    due = s.record(APPS, T0, Outcome.OK)
    assert s.failures(APPS) == 0
    assert due - T0 >= timedelta(minutes=10) * (1 - JITTER)
    retry = s.record(APPS, T0, Outcome.FAILED)
    assert retry - T0 <= timedelta(seconds=30) * (1 + JITTER)


def test_a_failed_object_does_not_stall_the_others() -> None:
    s = schedule()
    s.record(SOURCE, T0, Outcome.FAILED)
    s.record(IMAGES, T0, Outcome.OK)
    assert s.due(T0) == APPS
    s.record(APPS, T0, Outcome.OK)
    assert s.due(T0 + timedelta(minutes=2)) == SOURCE


def test_suspended_objects_are_never_due_and_are_due_at_once_when_resumed() -> None:
    s = schedule()
    assert s.due(T0, suspended={SOURCE}) == IMAGES
    s.record(IMAGES, T0, Outcome.OK)
    s.record(APPS, T0, Outcome.OK)
    assert s.due(T0, suspended={SOURCE}) is None
    assert s.due(T0) == SOURCE
    assert s.next_due_at(suspended={SOURCE, IMAGES, APPS}) is None


def test_an_object_scheduled_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="scheduled twice"):
        Schedule([*entries(), entries()[0]], T0, random.Random(0))


def test_a_request_makes_an_object_due_now_without_forgetting_its_failures() -> None:
    s = schedule()
    for key in (SOURCE, IMAGES):
        s.record(key, T0, Outcome.OK)
    s.record(APPS, T0, Outcome.FAILED)
    later = T0 + timedelta(seconds=5)
    assert s.due(later) is None
    s.hurry(IMAGES, later)
    assert s.due(later) == IMAGES
    s.hurry(APPS, later)
    assert s.failures(APPS) == 1
    assert IMAGES in s and ObjectKey("GitRepository", "x", "y") not in s


def test_hurrying_never_postpones_an_object_already_due() -> None:
    s = schedule()
    s.hurry(SOURCE, T0 + timedelta(minutes=3))
    assert s.due(T0) == SOURCE


def test_new_rules_keep_the_times_of_objects_kept_and_add_new_ones_due_now() -> None:
    s = schedule()
    for key in (SOURCE, IMAGES, APPS):
        s.record(key, T0, Outcome.FAILED if key == APPS else Outcome.OK)
    kept_due = s.next_due_at()
    added = ObjectKey("ImageRepository", "ledger", "ledger")
    later = T0 + timedelta(seconds=10)
    s.replace([entries()[0], entries()[2], Entry(added, timedelta(minutes=5), timedelta(minutes=5))],
              later)
    assert len(s) == 3 and IMAGES not in s
    assert s.due(later) == added
    s.record(added, later, Outcome.OK)
    assert s.failures(APPS) == 1 and s.next_due_at() == kept_due
    with pytest.raises(ValueError, match="scheduled twice"):
        s.replace([entries()[0], entries()[0]], later)


def test_work_done_recently_is_not_redone_at_start() -> None:
    s = Schedule(entries(), T0, random.Random(1), {IMAGES: T0 + timedelta(minutes=3),
                                                     APPS: T0 - timedelta(minutes=3)})
    seen = []
    while (key := s.due(T0)) is not None:
        seen.append(key)
        s.record(key, T0, Outcome.OK)
    assert seen == [SOURCE, APPS]
    others = (SOURCE, APPS)
    assert s.due(T0 + timedelta(minutes=2, seconds=59), others) is None
    assert s.due(T0 + timedelta(minutes=3), others) == IMAGES


def test_a_permanent_failure_waits_the_interval_and_a_temporary_one_backs_off() -> None:
    s = schedule()
    first = s.record(APPS, T0, Outcome.FAILED, permanent=True)
    assert first - T0 >= timedelta(minutes=10) * (1 - JITTER) and s.failures(APPS) == 1
    temporary = s.record(APPS, T0, Outcome.FAILED)
    assert temporary - T0 <= timedelta(seconds=60) * (1 + JITTER) and s.failures(APPS) == 2


@pytest.mark.parametrize(("error", "permanent"), [
    (SourceError("no git repository at file:///gone.git", permanent=True), True),
    (RegistryError("registry.example answered 503", permanent=False, status=503), False),
    (RegistryError("registry.example answered 401", permanent=True, status=401), True),
    (GitwardError("something else"), False),
])
def test_the_loop_hands_a_failures_permanence_to_the_schedule(error: GitwardError,
                                                              permanent: bool) -> None:
    result = Result.failed(error)
    assert (result.outcome, result.message, result.permanent) == (Outcome.FAILED, str(error), permanent)
