"""A decision made from the same inputs as the policy's latest is counted, not made again; any
change of inputs decides again, and a changed outcome is still a row of its own (the audit)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, text

from engine.model import (
    ImagePolicy,
    ImageRepository,
    NamespacedRef,
    PolicyChoice,
    PolicyKind,
    RuleSet,
)
from engine.reconcile.images import PolicyOutcome, decide_policy, record_tags
from engine.store import decisions as policy_decisions, queries
from engine.store.db import Store, open_store
from engine.store.migrate import alembic_config

REPOSITORY = ImageRepository(name="app", namespace="apps", image="registry.example/app")
POLICY = ImagePolicy(name="app", namespace="apps", repository=NamespacedRef("app"),
                     choice=PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0"))
TAGS = ["1.0.0", "1.1.0", "1.2.0", "latest"]


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    with open_store(url) as s:
        yield s


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """One second later at every reading: every scan and decision has its own time."""
    counter = itertools.count()
    return lambda: datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=next(counter))


def _interval(store: Store, clock: Callable[[], datetime], tags: list[str],
              policy: ImagePolicy = POLICY, deployed: str | None = None) -> PolicyOutcome:
    """One scan of `tags`, then the policy decided."""
    record_tags(store, REPOSITORY, tags, started_at=clock(), finished_at=clock())
    return decide_policy(store, RuleSet.of([REPOSITORY, policy]), policy, now=clock(),
                         deployed=deployed)


def _rows(store: Store) -> list[tuple[int, str | None, int]]:
    with store.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(  # type: ignore[misc]
            "SELECT id, selected_tag, runs FROM policy_decisions ORDER BY id"))]


def test_same_inputs_count_the_latest_row_without_evaluating(
        store: Store, clock: Callable[[], datetime]) -> None:
    first = _interval(store, clock, TAGS)
    assert first.evaluation is not None and first.decision.selected_tag == "1.2.0"
    second = _interval(store, clock, TAGS)  # its previous selection is new: decided, same row
    assert second.evaluation is not None and second.decision.id == first.decision.id
    again = _interval(store, clock, list(reversed(TAGS)))  # the same set, listed in another order
    assert again.evaluation is None
    assert (again.decision.id, again.decision.selected_tag) == (first.decision.id, "1.2.0")
    assert again.decision.decided_at > second.decision.decided_at
    assert again.decision.scan_id == queries.latest_scan(store, REPOSITORY.key.ref).id  # type: ignore[union-attr]
    assert _rows(store) == [(first.decision.id, "1.2.0", 3)]
    full = policy_decisions.decision_trace(store, again.decision)
    assert {t.tag for t in full.trace} == set(TAGS)  # the row keeps the trace it was made with


def test_changed_inputs_decide_again_and_a_new_outcome_is_a_row(
        store: Store, clock: Callable[[], datetime]) -> None:
    first = _interval(store, clock, TAGS)
    _interval(store, clock, TAGS)
    newer = _interval(store, clock, [*TAGS, "1.3.0"])
    assert newer.evaluation is not None
    assert (newer.decision.selected_tag, newer.decision.previous_tag) == ("1.3.0", "1.2.0")
    steady = _interval(store, clock, [*TAGS, "1.3.0"])
    assert steady.evaluation is not None  # its previous selection changed: an input
    assert steady.decision.id == newer.decision.id
    assert _interval(store, clock, [*TAGS, "1.3.0"]).evaluation is None
    narrower = ImagePolicy(name="app", namespace="apps", repository=NamespacedRef("app"),
                           choice=PolicyChoice(PolicyKind.SEMVER, range="<1.3.0"))
    spec = _interval(store, clock, [*TAGS, "1.3.0"], policy=narrower)
    assert spec.evaluation is not None and spec.decision.selected_tag == "1.2.0"
    deployed = _interval(store, clock, [*TAGS, "1.3.0"], policy=narrower, deployed="1.1.0")
    assert deployed.evaluation is not None
    assert [(tag, runs) for _, tag, runs in _rows(store)] == [
        ("1.2.0", 2), ("1.3.0", 3), ("1.2.0", 2)]
    assert first.decision.id == _rows(store)[0][0]


def test_a_lost_tag_is_an_input_so_the_guard_runs_again(
        store: Store, clock: Callable[[], datetime]) -> None:
    """The guard refuses the scan that lost most tags; the next one, identical in its tags but
    having lost nothing itself, is weighed again, not counted as the refusal."""
    many = [f"1.{n}.0" for n in range(10)]
    _interval(store, clock, many)
    refused = _interval(store, clock, many[:3])
    assert refused.decision.selected_tag is None and "lost 7 of the 10" in (refused.decision.error or "")
    after = _interval(store, clock, many[:3])
    assert after.evaluation is not None and after.decision.selected_tag == "1.2.0"


def test_migration_0010_adds_and_drops_the_inputs_column(url: str,
                                                         clock: Callable[[], datetime]) -> None:
    with open_store(url) as store:
        _interval(store, clock, TAGS)
        with store.engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0009")
        assert "inputs_digest" not in {c["name"] for c in inspect(store.engine).get_columns("policy_decisions")}
        with store.engine.connect() as connection:  # the views still read the table
            latest = connection.execute(text("SELECT policy, selected_tag FROM v_policy_latest")).all()
        assert [tuple(r) for r in latest] == [("apps/app", "1.2.0")]
    with open_store(url) as store:  # up again: the old row has no inputs, so it is decided once
        assert _interval(store, clock, TAGS).evaluation is not None
        assert _interval(store, clock, TAGS).evaluation is None
        assert [tag for _, tag, _ in _rows(store)] == ["1.2.0"]
