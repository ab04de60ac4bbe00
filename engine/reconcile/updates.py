"""Image updates on a checkout: decide every policy, plan the marker changes, write, commit, push.

`gitward images check|update` and `gitward plan` work on a local checkout (`--repo`); the
daemon works on a clone of each source (engine/act/git.py). Both plan with the same pure
function; this module gathers the facts for it and carries out the local part.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from engine.act.git import CommitRequest, CommitStatus, GitTarget, commit_and_push
from engine.act.signing import SigningError, keyring
from engine.errors import Problem
from engine.evaluate.decision import GATED, ScanFacts, decide, gated
from engine.evaluate.plan import (
    Selection,
    deployed_tags,
    edits_for,
    plan_updates,
    rewrite_all,
    scan_files,
)
from engine.model import (
    CommitAction,
    GateDecision,
    Decision,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Plan,
    RuleSet,
)
from engine.observe.git import SourceError
from engine.observe.transport import SecretError, SecretReader
from engine.reconcile.images import record_decision
from engine.reconcile.pushsettings import PushSettingsError, push_settings
from engine.reconcile.repo import read_marked_files
from engine.store import queries
from engine.store.actions import finish_action, start_action
from engine.store.db import Store
from engine.store.leases import LeaseHeld, git_lease_name, hold_lease


@dataclass(frozen=True)
class RepoPlan:
    """A plan for a checkout, the decisions behind it, the files it read, and their new text.

    `texts` maps each commit action's target to the new text of every file it changes.
    """

    plan: Plan
    decisions: tuple[Decision, ...]
    files: dict[str, str]
    texts: dict[str, dict[str, str]]
    selections: dict[str, Selection]


def decide_all(store: Store | None, rules: RuleSet, deployed: dict[str, str], now: datetime,
               *, record: bool, reuse: bool = False) -> tuple[dict[str, Selection], tuple[Decision, ...]]:
    """Decide every policy on its recorded facts; record the decisions only when asked.

    With `reuse`, a policy whose latest decision was made on its repository's latest scan keeps
    it: under `gitward run` the ImageRepository reconcile decides after each scan (Flux's
    automation likewise reads the ImagePolicy's status), so a decision is recorded once, not
    again by every automation pass. A policy with no decision on that scan (tags imported, its
    repository suspended) is decided here.
    """
    selections: dict[str, Selection] = {}
    made: list[Decision] = []
    for policy in rules.image_policies:
        decision = _reusable(store, policy) if reuse else None
        if decision is None:
            decision = _decide(store, rules, policy, deployed.get(policy.key.ref), now)
            if record and store is not None:
                decision = record_decision(store, decision)
        made.append(decision)
        chosen = decision if decision.selected_tag else (
            queries.latest_selection(store, policy.key.ref) if store is not None else None)
        if chosen is not None and chosen.selected_tag:
            selections[policy.key.ref] = _selection(store, policy, chosen)
    return selections, tuple(made)


def _reusable(store: Store | None, policy: ImagePolicy) -> Decision | None:
    """The policy's latest decision if it was made on its repository's latest scan (the record
    of a gate holding its tag back is not a decision of the policy: it is looked past)."""
    if store is None:
        return None
    scan = queries.latest_scan(store, policy.repository_key.ref)
    for last in queries.decisions(store, policy.key.ref, limit=3):
        if not (last.error or "").startswith(GATED):
            return last if scan is not None and last.scan_id == scan.id else None
    return None


def _record_gate(store: Store, gate: GateDecision, now: datetime) -> None:
    """Record a gate holding an update back: once while the same gate holds the same tag (its
    reason, "first seen 4m ago", changes with every pass)."""
    latest = queries.latest_decision(store, gate.policy)
    if (latest is not None and latest.selected_tag == gate.proposed
            and (latest.error or "").startswith(f"{GATED}{gate.gate.value}:")):
        return
    last = queries.latest_selection(store, gate.policy)
    queries.record_decision(store, gated(gate, last.previous_tag if last else None, now))


def _selection(store: Store | None, policy: ImagePolicy, chosen: Decision) -> Selection:
    assert chosen.selected_tag is not None
    return Selection(chosen.selected_tag, "", chosen.id,
                     _first_seen(store, policy, chosen.selected_tag))


def _decide(store: Store | None, rules: RuleSet, policy: ImagePolicy, deployed: str | None,
            now: datetime) -> Decision:
    repo_ref = policy.repository_key.ref
    repository = rules.get(policy.repository_key)
    if store is None:
        facts = ScanFacts(None, ())
        previous = None
    else:
        facts = ScanFacts(queries.latest_scan(store, repo_ref),
                          queries.tags(store, repo_ref, include_gone=True))
        last = queries.latest_selection(store, policy.key.ref)
        previous = last.selected_tag if last else None
    repo = repository if isinstance(repository, ImageRepository) else None
    decision, _ = decide(policy, repo, facts, previous=previous, deployed=deployed, now=now)
    return decision


def _first_seen(store: Store | None, policy: ImagePolicy, tag: str) -> datetime | None:
    if store is None:
        return None
    for t in queries.tags(store, policy.repository_key.ref, include_gone=True):
        if t.tag == tag:
            return t.first_seen
    return None


def plan_checkout(root: Path, rules: RuleSet, store: Store | None, now: datetime, *,
                  record: bool = False, reuse: bool = False) -> RepoPlan:
    """Decide every policy (`reuse`: see `decide_all`) and plan every automation's changes on a
    checkout."""
    files = read_marked_files(root, rules.marker_dialects)
    scans = scan_files(rules, files)
    values = [v for scan in scans.values() for v in scan.values]
    selections, decisions = decide_all(store, rules, deployed_tags(values), now, record=record,
                                       reuse=reuse)
    suspended = frozenset(s.object_name for s in queries.list_suspensions(store)
                          if s.object_kind == "ImageUpdateAutomation") if store else frozenset()
    plan = plan_updates(rules, files, selections, now, suspended, scans)
    plan = replace(plan, warnings=tuple(sorted({*plan.warnings, *rules.ignored()}, key=Problem.sort_key)))
    if record and store is not None:
        for gate in plan.gates:
            if not gate.applied:
                _record_gate(store, gate, now)
    texts = {a.target: rewrite_all(rules, files, selections, now, (a,), scans)
             for a in plan.actions}
    return RepoPlan(plan, decisions, files, texts, selections)


def write_atomically(path: Path, text: str) -> None:
    """Replace a file's content all at once, keeping its mode: never a half-written file."""
    mode = path.stat().st_mode & 0o7777
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".gitward")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text.encode("utf-8", errors="surrogateescape"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_changes(root: Path, texts: dict[str, str]) -> list[str]:
    """Write the new text of each changed file; returns the paths written."""
    written = []
    for rel, text in sorted(texts.items()):
        path = root / rel
        if path.read_bytes().decode("utf-8", errors="surrogateescape") != text:
            write_atomically(path, text)
            written.append(rel)
    return written


def for_automation(planned: RepoPlan, automation: str) -> RepoPlan:
    """The part of `planned` that automation `namespace/name` takes part in (a commit shared with
    other automations pushing to the same branch stays whole, as in `gitward apply`)."""
    mine = tuple(a for a in planned.plan.actions if automation in a.automations)
    return replace(planned, plan=replace(planned.plan, actions=mine))


@dataclass(frozen=True)
class Applied:
    """What became of one commit action."""

    action: CommitAction
    status: str
    summary: str
    commit: str | None = None


LEASE_TTL = timedelta(minutes=10)

COMMIT_PUSHED = "CommitPushed"
PUSH_FAILED = "PushFailed"


def apply_commits(store: Store, rules: RuleSet, planned: RepoPlan, now: datetime, *, workdir: Path, ssh_command: str | None, token: str | None,
                  holder: str, plan_id: str | None = None,
                  read_secret: SecretReader | None = None) -> list[Applied]:
    """Carry out every commit action on a fresh clone of its source, one writer per branch.

    Each action is recorded in `actions` (planned, then done/failed/skipped) under `plan_id`
    (None: a random one). On a push race the executor re-plans on the new head with the same
    rules and selections. Every commit is dated `now`, when gitward planned it, not when git
    happened to run: the history agrees with the recorded actions and an injected clock. The
    commit is signed, pushed with options and through a proxy as its automations and source ask
    (engine/reconcile/pushsettings.py; their Secrets are read with `read_secret`); an action
    whose Secrets cannot be read or whose key does not sign fails, never pushes unsigned.
    """
    plan_id = plan_id or uuid.uuid4().hex[:12]
    outcomes: list[Applied] = []
    for action in planned.plan.actions:
        action_id = start_action(store, plan_id=plan_id, type=action.TYPE, target=action.target,
                                 payload=action.to_json(), now=now)

        def edit(worktree: Path, action: CommitAction = action) -> list[str]:
            files = read_marked_files(worktree, rules.marker_dialects)
            return write_changes(worktree, edits_for(rules, files, planned.selections, now, action))

        try:
            with ExitStack() as stack:
                settings = push_settings(rules, action, read_secret)
                signer = stack.enter_context(keyring(settings.signing)) if settings.signing else None
                request = CommitRequest(
                    target=GitTarget(url=action.url, checkout_branch=action.checkout_branch,
                                     push_branch=action.push_branch, ssh_command=ssh_command,
                                     https_token=token, proxy=settings.proxy),
                    author=action.author, message=action.message, date=now, signer=signer,
                    push_options=settings.push_options, refspec=settings.refspec)
                with hold_lease(store, git_lease_name(action.url, action.push_branch), holder,
                                LEASE_TTL, now):
                    result = commit_and_push(request, edit, workdir=workdir)
        except LeaseHeld as err:
            finish_action(store, action_id, status="skipped", now=now, error=str(err))
            outcomes.append(Applied(action, "skipped", str(err)))
            continue
        except (SecretError, SigningError, PushSettingsError, SourceError) as err:
            finish_action(store, action_id, status="failed", now=now, error=str(err))
            applied = Applied(action, "failed", str(err))
            _commit_event(store, applied, now)
            outcomes.append(applied)
            continue
        status = {CommitStatus.PUSHED: "done", CommitStatus.UNCHANGED: "skipped"}.get(
            result.status, "failed")
        finish_action(store, action_id, status=status, now=now, error=result.error,
                      payload={"commit": result.commit, "attempts": result.attempts,
                               "forced": result.forced})
        applied = Applied(action, status, result.summary, result.commit)
        _commit_event(store, applied, now)
        outcomes.append(applied)
    return outcomes


def _commit_event(store: Store, applied: Applied, now: datetime) -> None:
    """An event on each automation of a pushed or failed commit (nothing to commit says nothing)."""
    action = applied.action
    if applied.status == "done" and applied.commit:
        changes = ", ".join(dict.fromkeys(f"{c.old} -> {c.new}" for c in action.files))
        severity, reason = queries.EventSeverity.INFO, COMMIT_PUSHED
        message = f"pushed {applied.commit[:7]} to {action.push_branch}: {changes}"
    elif applied.status == "failed":
        severity, reason = queries.EventSeverity.ERROR, PUSH_FAILED
        message = f"commit to {action.push_branch} not pushed: {applied.summary}"
    else:
        return
    for automation in action.automations:
        queries.record_event(store, queries.Event(
            time=now, object_kind=ImageUpdate.KIND, object_name=automation, severity=severity,
            reason=reason, message=message))
