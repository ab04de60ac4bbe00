"""Which policies a plan does not know: never scanned, a failed scan, a refused or failed decision;
only for markers an automation would update, and never for a pinned policy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.evaluate.plan import scan_files
from engine.evaluate.rewrite import MarkedValue
from engine.evaluate.unknown import unknown_policies, unknown_reason
from engine.model import REFUSED, Decision, DecisionOutcome, Gate
from tests.unit.test_plan_updates import FILES, rules

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def decided(policy: str, tag: str | None = None, error: str | None = None,
            gate: Gate | None = None) -> Decision:
    return Decision(policy=policy, decided_at=NOW, selected_tag=tag, error=error, gate=gate)


@pytest.mark.parametrize(("decision", "reason"), [
    (decided("apps/web", "1.2.0"), None),
    (decided("apps/web", error=f"{REFUSED}ImageRepository apps/web has not been scanned yet"),
     "ImageRepository apps/web has not been scanned yet"),
    (decided("apps/web", error=f"{REFUSED}the latest scan of apps/web failed: 503; keeping 1.0.0"),
     "the latest scan of apps/web failed: 503; keeping 1.0.0"),
    (decided("apps/web", error='no tag satisfies ">=9.0.0"'), 'no tag selected: no tag satisfies ">=9.0.0"'),
    (decided("apps/web", "1.3.0", error="1.3.0 was first seen 2m ago", gate=Gate.HOLD), None),
])
def test_a_decision_is_unknown_unless_it_selected_a_tag(decision: Decision, reason: str | None) -> None:
    assert unknown_reason(decision) == reason


@pytest.mark.parametrize(("decision", "outcome", "held"), [
    (decided("apps/web", "1.2.0"), DecisionOutcome.SELECTED, ""),
    (decided("apps/web", error=f"{REFUSED}the latest scan of apps/web listed no tags"),
     DecisionOutcome.REFUSED, ""),
    (decided("apps/web", error='no tag satisfies ">=9.0.0"'), DecisionOutcome.FAILED, ""),
    (decided("apps/web"), DecisionOutcome.FAILED, ""),
    (decided("apps/web", "1.3.0", error="1.3.0 was first seen 2m ago (app.yaml:7)", gate=Gate.HOLD),
     DecisionOutcome.HELD, "hold: 1.3.0 was first seen 2m ago (app.yaml:7)"),
])
def test_a_decision_says_its_outcome(decision: Decision, outcome: DecisionOutcome, held: str) -> None:
    assert (decision.outcome, decision.held) == (outcome, held)


def values(files: dict[str, str]) -> list[MarkedValue]:
    return [v for scan in scan_files(rules(), files).values() for v in scan.values]


FAILED = f"{REFUSED}the latest scan of apps/web failed: connection refused"


def test_each_unknown_policy_is_listed_once_at_its_first_marker() -> None:
    both = {**FILES, "cluster/apps/web2.yaml": FILES["cluster/apps/web.yaml"]}
    found = unknown_policies(rules(), values(both), {
        "apps/web": decided("apps/web", error=FAILED),
        "apps/api": decided("apps/api", "1.1.0"),
    })
    assert [(u.policy, u.reason, u.path, u.line) for u in found] == [
        ("apps/web", "the latest scan of apps/web failed: connection refused",
         "cluster/apps/web.yaml", 1)]


def test_a_policy_with_no_decision_at_all_is_unknown() -> None:
    found = unknown_policies(rules(), values(FILES), {"apps/web": decided("apps/web", "1.2.0")})
    assert [(u.policy, u.reason) for u in found] == [("apps/api", "not decided")]


def test_markers_no_automation_updates_do_not_count() -> None:
    """other/db is outside the automation's namespace; cluster/infra is outside its path."""
    failed = {p: decided(p, error=FAILED) for p in ("apps/web", "apps/api", "other/db")}
    only_infra = {"cluster/infra/web.yaml": FILES["cluster/infra/web.yaml"],
                  "cluster/apps/db.yaml": FILES["cluster/apps/db.yaml"]}
    assert unknown_policies(rules(), values(only_infra), failed) == ()


def test_a_suspended_automation_or_a_pinned_policy_needs_no_selection() -> None:
    failed = {p: decided(p, error=FAILED) for p in ("apps/web", "apps/api")}
    assert unknown_policies(rules(), values(FILES), failed, frozenset({"apps/apps"})) == ()
    pinned = rules(web='pin "1.0.0"', api='pin "1.0.0"')
    marked = [v for scan in scan_files(pinned, FILES).values() for v in scan.values]
    assert unknown_policies(pinned, marked, failed) == ()
