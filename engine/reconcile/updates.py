"""Image updates planned on a checkout: decide every policy, then plan the marker changes.

`gitward images check|update` and `gitward plan` work on a local checkout (`--repo`); the
daemon works on a clone of each source (engine/act/git.py). Both plan with the same pure
function; this module gathers the facts for it. Carrying a plan out (write, commit, push) is
engine/reconcile/commits.py's, so a plan imports no git library.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime

from engine.evaluate.decision import PolicyMemos, ScanFacts, decide, gated
from engine.evaluate.policy import PolicyMemo
from engine.evaluate.unknown import unknown_policies
from engine.evaluate.plan import Selection, plan_updates, rewrite_all
from engine.model import (
    Gate,
    GateDecision,
    Decision,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Plan,
    RuleSet,
    UnknownPolicy,
)
from engine.reconcile.imagefacts import RegistryAccess, gather_images
from engine.reconcile.images import record_decision, scan_facts
from engine.reconcile.repo import MarkedTree, checkout_lints, unique
from engine.store import decisions as policy_decisions, queries
from engine.store.db import Store
from engine.store.images import first_seen


@dataclass(frozen=True)
class RepoPlan:
    """A plan for a checkout, the decisions behind it, the files it read, and their new text.

    `texts` maps each commit action's target to the new text of every file it changes.
    `warned` are the gates that held an update back for a new reason (recorded with a warning
    event); the same gate on the next pass is not in it, so a warning is said once per change.
    """

    plan: Plan
    decisions: tuple[Decision, ...]
    files: dict[str, str]
    texts: dict[str, dict[str, str]]
    selections: dict[str, Selection]
    warned: tuple[GateDecision, ...] = ()


def decide_all(store: Store | None, rules: RuleSet, deployed: dict[str, str], now: datetime,
               *, record: bool, reuse: bool = False, memos: PolicyMemos | None = None,
               ) -> tuple[dict[str, Selection], tuple[Decision, ...]]:
    """Decide every policy on its recorded facts; record the decisions only when asked.
    `memos` are the daemon's (a one-shot command passes none).

    With `reuse`, a policy whose latest decision was made on its repository's latest scan keeps
    it: under `gitward run` the ImageRepository reconcile decides after each scan (Flux's
    automation likewise reads the ImagePolicy's status), so a decision is recorded once, not
    again by every automation pass. A policy with no decision on that scan (tags imported, its
    repository suspended) is decided here.
    """
    chosen_by: dict[str, tuple[ImagePolicy, Decision]] = {}
    made: list[Decision] = []
    for policy in rules.image_policies:
        with ExitStack() as each:  # a policy's reads and writes in one transaction
            if store is not None:
                each.enter_context(queries.batch(store))
            decision = _reusable(store, policy) if reuse else None
            if decision is None:
                decision = _decide(store, rules, policy, deployed.get(policy.key.ref), now,
                                   memos.of(policy) if memos is not None else None)
                if record and store is not None:
                    decision = record_decision(store, decision)
            made.append(decision)
            chosen = decision if decision.selected_tag else (
                policy_decisions.latest_selection(store, policy.key.ref) if store is not None else None)
        if chosen is not None and chosen.selected_tag:
            chosen_by[policy.key.ref] = (policy, chosen)
    return _selections(store, chosen_by), tuple(made)


def _reusable(store: Store | None, policy: ImagePolicy) -> Decision | None:
    """The policy's latest decision if it was made on its repository's latest scan (the record
    of a gate holding its tag back is not a decision of the policy: it is looked past)."""
    if store is None:
        return None
    scan = queries.latest_scan(store, policy.repository_key.ref)
    for last in policy_decisions.decisions(store, policy.key.ref, limit=3):
        if last.gate is None:
            return last if scan is not None and last.scan_id == scan.id else None
    return None


UPDATE_HELD = "UpdateHeld"
WARNED_GATES = frozenset({Gate.ROLLBACK, Gate.NEVER_DOWNGRADE, Gate.DIGEST})
"""Gates worth a warning: they hold an update until someone acts (a hold ends by itself)."""


def _record_gate(store: Store, gate: GateDecision, now: datetime) -> bool:
    """Record a gate holding an update back: once while the same gate holds the same tag (its
    reason, "first seen 4m ago", changes with every pass), that row counted again on every pass
    (`counted_again`) while only the selection it holds was recorded since. True when this gate
    is new for the policy: the gate last recorded held another tag or by another gate, or the
    policy has since selected another tag."""
    recent = policy_decisions.decisions(store, gate.policy, limit=GATE_LOOKBACK)
    new = True
    for seen in recent:
        if seen.gate is not None:
            new = not (seen.selected_tag == gate.proposed and seen.gate is gate.gate)
            break
        if seen.selected_tag != gate.proposed:
            break
    # the same gate, with nothing but the selection it holds recorded since: counted again
    held = next((seen for seen in recent[:2] if seen.gate is not None), None)
    if not new and held is not None and held.id is not None:
        policy_decisions.counted_again(store, held.id, now)
        return False
    last = policy_decisions.latest_selection(store, gate.policy)
    policy_decisions.record_decision(store, gated(gate, last.previous_tag if last else None, now))
    return new


GATE_LOOKBACK = 10
"""Decisions looked through for the gate last recorded (each scan adds one in between)."""


def _warn(store: Store, gate: GateDecision, now: datetime) -> None:
    """The event of a gate that holds an update until someone acts."""
    queries.record_event(store, queries.Event(
        time=now, object_kind=ImagePolicy.KIND, object_name=gate.policy,
        severity=queries.EventSeverity.WARNING, reason=UPDATE_HELD,
        message=f"{gate.current} -> {gate.proposed} held ({gate.path}:{gate.line}): "
                f"{gate.gate.value}: {gate.reason}"))


def _selections(store: Store | None,
                chosen: dict[str, tuple[ImagePolicy, Decision]]) -> dict[str, Selection]:
    """Each policy's selection, with when the ledger first saw its tag: one query per image
    repository for all its policies' tags, not a load of its every tag per policy."""
    wanted: dict[str, set[str]] = {}
    for policy, decision in chosen.values():
        assert decision.selected_tag is not None
        wanted.setdefault(policy.repository_key.ref, set()).add(decision.selected_tag)
    seen: dict[str, dict[str, datetime]] = {repository: {} for repository in wanted}
    if store is not None:
        with queries.batch(store):  # reads only: one session for them all
            seen = {repository: first_seen(store, repository, tags)
                    for repository, tags in wanted.items()}
    return {ref: Selection(decision.selected_tag or "", "", decision.id,
                           seen[policy.repository_key.ref].get(decision.selected_tag or ""))
            for ref, (policy, decision) in chosen.items()}


def _decide(store: Store | None, rules: RuleSet, policy: ImagePolicy, deployed: str | None,
            now: datetime, memo: PolicyMemo | None) -> Decision:
    repo_ref = policy.repository_key.ref
    repository = rules.get(policy.repository_key)
    if store is None:
        facts = ScanFacts(None, ())
        previous = None
    else:
        facts = scan_facts(store, repo_ref)
        last = policy_decisions.latest_selection(store, policy.key.ref)
        previous = last.selected_tag if last else None
    repo = repository if isinstance(repository, ImageRepository) else None
    decision, _ = decide(policy, repo, facts, previous=previous, deployed=deployed, now=now,
                         memo=memo)
    return decision


def plan_checkout(marked: MarkedTree, rules: RuleSet, store: Store | None, now: datetime, *,
                  record: bool = False, reuse: bool = False,
                  access: RegistryAccess | None = None,
                  memos: PolicyMemos | None = None) -> RepoPlan:
    """Decide every policy (`reuse`: see `decide_all`) and plan every automation's changes on a
    checkout's markers (`read_marked_tree`, or a pass's `MarkedTrees`); the plan also says which
    policies its markers need are unknown, and the lints. With `access`, the registries are asked
    what the store does not know of the images a change involves (engine/reconcile/imagefacts.py);
    without, the plan is offline. `memos`: the daemon's (see `decide_all`)."""
    files, scans, values = marked.files, marked.scans, list(marked.values)
    selections, decisions = decide_all(store, rules, marked.deployed, now, record=record,
                                       reuse=reuse, memos=memos)
    if store is not None:
        selections = gather_images(store, rules, selections, values, now, access)
    suspended = frozenset(s.object_name for s in queries.list_suspensions(store)
                          if s.object_kind == "ImageUpdateAutomation") if store else frozenset()
    plan = plan_updates(rules, files, selections, now, suspended, scans)
    lints = checkout_lints(marked.root, rules, values)
    plan = replace(plan, unknown=unknown_policies(rules, values, {d.policy: d for d in decisions},
                                                  suspended),
                   warnings=tuple(unique([*plan.warnings, *lints, *rules.ignored()]).sorted()))
    warned: list[GateDecision] = []
    if record and store is not None:
        for gate in plan.gates:
            if not gate.applied and _record_gate(store, gate, now) and gate.gate in WARNED_GATES:
                _warn(store, gate, now)
                warned.append(gate)
    texts = {a.target: rewrite_all(rules, files, selections, now, (a,), scans)
             for a in plan.actions}
    return RepoPlan(plan, decisions, files, texts, selections, tuple(warned))


def for_automation(planned: RepoPlan, automation: str) -> RepoPlan:
    """The part of `planned` that automation `namespace/name` takes part in (a commit shared with
    other automations pushing to the same branch stays whole, as in `gitward apply`)."""
    mine = tuple(a for a in planned.plan.actions if automation in a.automations)
    return replace(planned, plan=replace(planned.plan, actions=mine))


def unknown_of(planned: RepoPlan, automation: ImageUpdate) -> list[UnknownPolicy]:
    """The unknown policies an automation's markers need (it applies its own namespace's)."""
    return [u for u in planned.plan.unknown if u.policy.partition("/")[0] == automation.namespace]
