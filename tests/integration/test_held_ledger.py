"""A held update in the ledger: an interval that finds it held again adds no row anywhere, and
still says when the gate was last checked; a change (a new tag) is recorded as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import inspect, text

from engine.errors import Problems
from engine.model import DecisionOutcome, Gate, ImagePolicy, ImageRepository, RuleSet
from engine.reconcile.images import decide_policy, record_tags
from engine.reconcile.repo import read_marked_tree
from engine.reconcile.updates import plan_checkout
from engine.rules.load import load_repo
from engine.store import decisions as policy_decisions
from engine.store.db import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=5)
RULES = """\
source git flux-system/flux-system {
  url "ssh://git@example.com/org/repo"
}

image repository apps/app {
  image "registry.example.com/app"
  interval 5m
}

image policy apps/app {
  repository app
  select highest semver ">=1.0.0"
}

image update apps/app {
  source git flux-system/flux-system
  interval 5m
  checkout branch "main"
  author "bot <bot@example.com>"
  message "update app"
  push "main"
}
"""
# 0.9.0 is deployed; the registry says nothing of the images' ages, so moving to 1.x is held
# as a possible rollback until it can tell.
DEPLOYMENT = 'app:\n  image: registry.example.com/app:0.9.0 # {"$imagepolicy": "apps:app"}\n'


def _repo(root: Path) -> RuleSet:
    (root / "cluster").mkdir(parents=True)
    (root / "cluster" / "app.rules").write_text(RULES, encoding="utf-8")
    (root / "cluster" / "deployment.yaml").write_text(DEPLOYMENT, encoding="utf-8")
    problems = Problems()
    rules = load_repo(root, problems).rules
    assert not problems.errors, problems.errors
    return rules


def _interval(store: Store, root: Path, rules: RuleSet, tags: list[str], at: datetime) -> None:
    """What `gitward run` does each interval: scan, decide, then plan the automation."""
    [repository] = rules.image_repositories
    [policy] = rules.image_policies
    assert isinstance(repository, ImageRepository) and isinstance(policy, ImagePolicy)
    record_tags(store, repository, tags, started_at=at, finished_at=at)
    decide_policy(store, rules, policy, now=at)
    planned = plan_checkout(read_marked_tree(root, rules), rules, store, at, record=True, reuse=True)
    assert [(g.gate.value, g.proposed) for g in planned.plan.gates] == [("rollback", max(tags))]
    assert planned.plan.actions == ()


def _rows(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {name: connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
                for name in inspect(connection).get_table_names()}


def test_a_held_update_adds_no_row_while_it_stays_held_and_a_change_does(
        store: Store, tmp_path: Path) -> None:
    rules = _repo(tmp_path / "repo")
    tags = ["1.0.0", "1.1.0"]
    _interval(store, tmp_path / "repo", rules, tags, T0)
    first = _rows(store)
    assert first["policy_decisions"] == 2  # the selection, and the gate that holds it
    for step in (1, 2):
        _interval(store, tmp_path / "repo", rules, tags, T0 + step * INTERVAL)
        assert _rows(store) == first
    gate, selection = policy_decisions.decisions(store, "apps/app")
    assert (gate.selected_tag, selection.selected_tag) == ("1.1.0", "1.1.0")
    assert (gate.gate, gate.outcome, selection.outcome) == (
        Gate.ROLLBACK, DecisionOutcome.HELD, DecisionOutcome.SELECTED)
    assert gate.decided_at == selection.decided_at == T0 + 2 * INTERVAL  # last checked
    with store.engine.connect() as connection:
        counted = connection.execute(text(
            "SELECT since, runs FROM policy_decisions ORDER BY id")).all()
    assert [row.runs for row in counted] == [3, 3]

    tags = [*tags, "1.2.0"]
    _interval(store, tmp_path / "repo", rules, tags, T0 + 3 * INTERVAL)
    changed = _rows(store)
    assert changed["policy_decisions"] == first["policy_decisions"] + 2
    newest = policy_decisions.decisions(store, "apps/app", limit=2)
    assert [(d.selected_tag, d.gate is not None) for d in newest] == [
        ("1.2.0", True), ("1.2.0", False)]
    assert newest[1].previous_tag == "1.1.0"
