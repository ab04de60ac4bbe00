"""Policies whose selection gitward does not know, for the markers that need one.

A policy is unknown when its repository was never scanned, its latest scan failed, or its
decision was refused (the scan guard, engine/evaluate/decision.py) or selected nothing. A
marker that needs such a policy is not "current", whatever the plan proposes for it: `plan`,
`images check|update` and `run` list the policy with its reason, and `plan` and `images check`
exit 1.

Only markers an automation would update count (under its path, naming a policy of its own
namespace, the automation not suspended), and not those of a pinned policy: the pin decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.evaluate.plan import in_scope
from engine.evaluate.rewrite import MarkedValue
from engine.model import REFUSED, Decision, DecisionOutcome, ImagePolicy, ObjectKey, RuleSet, UnknownPolicy


def unknown_reason(decision: Decision) -> str | None:
    """Why a policy's decision leaves it unknown, or None when it selected a tag."""
    outcome = decision.outcome
    if outcome in (DecisionOutcome.SELECTED, DecisionOutcome.HELD):  # a gate's record is not
        return None  # a decision of the policy
    error = decision.error or "no candidate"
    if outcome is DecisionOutcome.REFUSED:
        return error.removeprefix(REFUSED)
    return f"no tag selected: {error}"


def unknown_policies(rules: RuleSet, values: Iterable[MarkedValue],
                     decisions: Mapping[str, Decision],
                     suspended: frozenset[str] = frozenset()) -> tuple[UnknownPolicy, ...]:
    """Each unknown policy some automation's marker needs, at its first such marker."""
    automations = [u for u in rules.image_updates if not u.suspend and u.key.ref not in suspended]
    found: dict[str, UnknownPolicy] = {}
    for value in sorted(values, key=lambda v: (v.marker.path, v.line)):
        marker = value.marker
        policy = rules.get(ObjectKey(ImagePolicy.KIND, marker.policy_namespace, marker.policy_name))
        if not isinstance(policy, ImagePolicy) or policy.pin or policy.key.ref in found:
            continue
        if not any(u.namespace == marker.policy_namespace and in_scope(marker.path, u.path)
                   for u in automations):
            continue
        decision = decisions.get(policy.key.ref)
        reason = unknown_reason(decision) if decision is not None else "not decided"
        if reason is not None:
            found[policy.key.ref] = UnknownPolicy(policy.key.ref, reason, marker.path, value.line)
    return tuple(found[ref] for ref in sorted(found))
