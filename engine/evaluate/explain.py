"""A recorded decision in words: what won, what came second and why it lost, what was dropped.

Pure text from a policy and its decision, so `gitward explain` and `gitward images test` say
the same things, and a test can read them without a store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from engine.model import (
    REFUSED,
    Decision,
    DecisionOutcome,
    Direction,
    ImagePolicy,
    PolicyKind,
    TagVerdict,
)
from engine.rules.ocitag import shown_tag

_DROPPED = ("excluded", "filtered", "unparsable", "out-of-range", "prerelease-excluded")


@dataclass(frozen=True)
class Explanation:
    summary: tuple[str, ...]
    lints: tuple[str, ...]


def describe_policy(policy: ImagePolicy) -> str:
    """`alphabetical, select highest (Flux: order asc); filter "..." extract "$ts"`."""
    choice = policy.choice
    if choice.kind is PolicyKind.SEMVER:
        text = f'semver, select highest in "{choice.range}"'
    else:
        text = (f"{choice.kind.value}, select {choice.direction.value} "
                f"(Flux: order {choice.direction.flux_order})")
    if policy.filter is not None:
        text += f'; filter "{policy.filter.pattern}"'
        if policy.filter.extract:
            text += f' extract "{policy.filter.extract}"'
    return text


def lints_need_value(policy: ImagePolicy) -> bool:
    """Whether `decision_lints` names the selected tag's value for this policy (else a reader
    need not decode the decision's trace to learn it)."""
    return policy.choice.kind is not PolicyKind.SEMVER and policy.choice.direction is Direction.LOWEST


def decision_lints(policy: ImagePolicy, selected: str | None,
                   value: str | None) -> list[tuple[str, str]]:
    """(code, message) of the lints that apply to this decision, naming the tag they are about.

    The codes are those of `gitward check`'s static lints, which these replace when shown.
    """
    lints: list[tuple[str, str]] = []
    if lints_need_value(policy) and selected:
        shown = f"{value} ({selected})" if value and value != selected else selected
        lints.append(("order-desc", f"order desc selects the lowest value: {shown}; for the "
                      "newest timestamp use asc (select highest)"))
    if policy.choice.kind is PolicyKind.NUMERICAL and policy.filter is None:
        lints.append(("numerical-unfiltered", "numerical policy without filterTags: Flux fails "
                      "the whole policy on one non-numeric tag such as `latest`; gitward skips "
                      "such tags"))
    return lints


def explained(recent: Sequence[Decision]) -> tuple[Decision | None, Decision | None]:
    """The decision to explain among `recent` (newest first) and the gate that held it back:
    a gate's record is not a decision, so the newest one that is not, with the gate when the
    newest record of all is one."""
    gate = recent[0] if recent and is_gate(recent[0]) else None
    decision = next((d for d in recent if not is_gate(d)), None)
    return decision, gate


def is_gate(decision: Decision) -> bool:
    """Whether the record is a gate holding an update back (its tag is the proposed one)."""
    return decision.gate is not None


def explain(policy: ImagePolicy, decision: Decision, gate: Decision | None = None) -> Explanation:
    """The decision in a few sentences, and the lints that apply to it.

    `gate` is a later decision in which a gate held the selection back from git.
    """
    lines = [f"ImagePolicy {policy.key.ref}: {describe_policy(policy)}."]
    if gate is not None and gate.gate is not None:
        lines.append(f"Not applied to git: {gate.held}.")
    stamp = decision.decided_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    scan = f" from scan #{decision.scan_id}" if decision.scan_id else ""
    lines.append(f"Decided {stamp}{scan} of ImageRepository {policy.repository_key.ref}.")
    if decision.outcome is DecisionOutcome.REFUSED and decision.error:
        lines.append(f"Not evaluated: {decision.error.removeprefix(REFUSED)}.")
        return Explanation(tuple(lines), ())
    ranked = sorted((t for t in decision.trace if t.rank is not None), key=lambda t: t.rank or 0)
    winner = ranked[0] if ranked and decision.selected_tag else None
    if winner is not None:
        lines.append(f"Selected {winner.tag}{_value(winner)}"
                     + (f"; previously {decision.previous_tag}." if decision.previous_tag
                        and decision.previous_tag != winner.tag else
                        "; unchanged." if decision.previous_tag else "."))
        if len(ranked) > 1:
            runner = ranked[1]
            lines.append(f"Runner-up {runner.tag}{_value(runner)} lost: {_why_lower(policy)} "
                         f"than {winner.tag}.")
    else:
        lines.append(f"No tag selected: {decision.error or 'no candidate'}.")
    lines.extend(_dropped(decision.trace))
    value = winner.value if winner else None
    lints = decision_lints(policy, decision.selected_tag, value)
    return Explanation(tuple(lines), tuple(message for _, message in lints))


def _why_lower(policy: ImagePolicy) -> str:
    """Why a ranked tag lost to the winner, in the policy's own ordering."""
    kind, direction = policy.choice.kind, policy.choice.direction
    if kind is PolicyKind.SEMVER:
        return "a lower version"
    if kind is PolicyKind.NUMERICAL:
        return "a smaller number" if direction is Direction.HIGHEST else "a larger number"
    return "earlier in byte order" if direction is Direction.HIGHEST else "later in byte order"


def _value(t: TagVerdict) -> str:
    return f" (value {t.value})" if t.value is not None and t.value != t.tag else ""


def _dropped(trace: tuple[TagVerdict, ...]) -> list[str]:
    counts = Counter(t.verdict for t in trace)
    lines = []
    for verdict in _DROPPED:
        tags = [shown_tag(t.tag) for t in trace if t.verdict == verdict]
        if not tags:
            continue
        sample = ", ".join(tags[:3]) + (f" and {len(tags) - 3} more" if len(tags) > 3 else "")
        lines.append(f"{verdict}: {counts[verdict]} tag{'s' * (len(tags) != 1)} ({sample}).")
    return lines
