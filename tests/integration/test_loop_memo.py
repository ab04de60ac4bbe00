"""`gitward run` keeps one PolicyMemo per policy: an interval that finds k new tags puts only
those k through the policy's steps, and selects what an evaluation without a memo selects. In
process, on simulated time, against the real registry."""

from __future__ import annotations

import io
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.daemon import SimulatedClock, SimulatedStop
from engine.evaluate.policy import evaluate_policy
from engine.model import (
    ImagePolicy,
    ImageRepository,
    NamespacedRef,
    PolicyChoice,
    PolicyKind,
    RuleSet,
)
from engine.reconcile.loop import Access, Controller
from engine.reconcile.telemetry import LogFormat, LogLevel, RunLog
from engine.store import decisions as policy_decisions, queries
from engine.store.db import open_store
from tests.integration.registry_env import RunningRegistry, seed_tags

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
FIRST = [f"1.{minor}.{patch}" for minor in range(6) for patch in range(5)]
FIRST += ["latest", "1.9.0-rc.1"]
NEW = ["1.7.0", "1.6.3", "sha-abc1234"]


def test_the_loop_evaluates_only_the_new_tags_of_a_rescan(open_registry: RunningRegistry,
                                                          tmp_path: Path) -> None:
    name = f"memo/{uuid.uuid4().hex[:8]}"
    seed_tags(open_registry.url, name, FIRST)
    repository = ImageRepository("app", f"{open_registry.host}/{name}", namespace="apps",
                                 insecure=True, interval=timedelta(minutes=5))
    policy = ImagePolicy("app", NamespacedRef("app"),
                         PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0"), namespace="apps")
    rules = RuleSet.of([repository, policy])
    repo = tmp_path / "rules"
    repo.mkdir()
    pushed: list[float] = []

    def push_once(before: float, after: float) -> None:
        """New tags between the first scan (at 0) and the second (at 5 minutes)."""
        if not pushed and after >= 60:
            seed_tags(open_registry.url, name, NEW)
            pushed.append(after)

    clock = SimulatedClock(T0)
    stop = SimulatedStop(clock, end=timedelta(minutes=11).total_seconds(), on_advance=push_once)
    out = io.StringIO()
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        controller = Controller(store, rules, repo,
                                Access(workdir=tmp_path / "cache", holder="test:1"),
                                RunLog(out, LogFormat.JSON, LogLevel.INFO, clock), clock=clock,
                                rng=random.Random(1), stop=stop)
        controller.run()
        decided = policy_decisions.decisions(store, "apps/app", limit=10)
        listed = [t.tag for t in queries.tags(store, "apps/app")]
        trace = policy_decisions.decision_trace(store, decided[0]).trace

    assert pushed, out.getvalue()
    # three intervals; the third found nothing new, which records no decision
    assert [d.selected_tag for d in decided] == ["1.7.0", "1.5.4"], out.getvalue()
    assert out.getvalue().count('"kind": "ImageRepository"') == 3
    memo = controller.memos.of(policy)
    # the first interval stepped every tag; the second only the new ones; the third none
    assert memo.stepped == len(FIRST) + len(NEW)
    assert sorted(listed) == sorted(FIRST + NEW)
    without = evaluate_policy(policy, repository, listed)
    assert decided[0].selected_tag == without.selected
    assert dict(decided[0].verdict_counts) == {k: v for k, v in without.counts.items() if v}
    assert trace == without.tags
