"""Image updates on a checkout: decide every policy, plan the marker changes, write, commit, push.

`gitward images check|update` and `gitward plan` work on a local checkout (`--repo`); the
daemon works on a clone of each source (engine/act/git.py). Both plan with the same pure
function; this module gathers the facts for it and carries out the local part.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from engine.act.checkout import (
    CheckoutError,
    RebaseConflict,
    commit_files,
    drop_commit,
    push_branch,
    pushed_commit,
)
from engine.act.git import CommitRequest, CommitStatus, GitTarget, commit_and_push
from engine.act.signing import SigningError, keyring
from engine.evaluate.decision import GATED, ScanFacts, decide, gated
from engine.evaluate.unknown import unknown_policies
from engine.evaluate.plan import (
    Selection,
    edits_for,
    plan_updates,
    rewrite_all,
)
from engine.model import (
    CommitAction,
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
from engine.observe.git import SourceError
from engine.observe.transport import SecretError, SecretReader
from engine.reconcile.heartbeat import LEASE_TTL, hold_renewed
from engine.reconcile.imagefacts import RegistryAccess, gather_images
from engine.reconcile.images import Clock, record_decision, scan_facts, utcnow
from engine.reconcile.pushsettings import PushSettingsError, push_settings
from engine.reconcile.repo import MarkedTree, checkout_lints, read_marked_files, unique
from engine.store import decisions as policy_decisions, queries
from engine.store.actions import finish_action, finish_interrupted, start_action
from engine.store.db import Store
from engine.reconcile.telemetry import RunLog
from engine.store.images import first_seen
from engine.store.leases import LeaseHeld, git_lease_name


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
               *, record: bool, reuse: bool = False) -> tuple[dict[str, Selection], tuple[Decision, ...]]:
    """Decide every policy on its recorded facts; record the decisions only when asked.

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
                decision = _decide(store, rules, policy, deployed.get(policy.key.ref), now)
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
        if not (last.error or "").startswith(GATED):
            return last if scan is not None and last.scan_id == scan.id else None
    return None


UPDATE_HELD = "UpdateHeld"
WARNED_GATES = frozenset({Gate.ROLLBACK, Gate.NEVER_DOWNGRADE, Gate.DIGEST})
"""Gates worth a warning: they hold an update until someone acts (a hold ends by itself)."""


def _record_gate(store: Store, gate: GateDecision, now: datetime) -> bool:
    """Record a gate holding an update back: once while the same gate holds the same tag (its
    reason, "first seen 4m ago", changes with every pass). True when this gate is new for the
    policy: the gate last recorded held another tag or by another gate, or the policy has since
    selected another tag."""
    prefix = f"{GATED}{gate.gate.value}:"
    recent = policy_decisions.decisions(store, gate.policy, limit=GATE_LOOKBACK)
    new = True
    for seen in recent:
        if (seen.error or "").startswith(GATED):
            new = not (seen.selected_tag == gate.proposed and (seen.error or "").startswith(prefix))
            break
        if seen.selected_tag != gate.proposed:
            break
    latest = recent[0] if recent else None
    if (latest is not None and latest.selected_tag == gate.proposed
            and (latest.error or "").startswith(prefix)):
        return new
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
            now: datetime) -> Decision:
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
    decision, _ = decide(policy, repo, facts, previous=previous, deployed=deployed, now=now)
    return decision


def plan_checkout(marked: MarkedTree, rules: RuleSet, store: Store | None, now: datetime, *,
                  record: bool = False, reuse: bool = False,
                  access: RegistryAccess | None = None) -> RepoPlan:
    """Decide every policy (`reuse`: see `decide_all`) and plan every automation's changes on a
    checkout's markers (`read_marked_tree`, or a pass's `MarkedTrees`); the plan also says which
    policies its markers need are unknown, and the lints. With `access`, the registries are asked
    what the store does not know of the images a change involves (engine/reconcile/imagefacts.py);
    without, the plan is offline."""
    files, scans, values = marked.files, marked.scans, list(marked.values)
    selections, decisions = decide_all(store, rules, marked.deployed, now, record=record,
                                       reuse=reuse)
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


def _replan(root: Path, rules: RuleSet, selections: Mapping[str, Selection], now: datetime,
            action: CommitAction) -> list[str]:
    """Plan `action` again on the marked files at `root` as they are now (after a lost race or a
    person's edit of the same lines) and write what changes; the files written."""
    files = read_marked_files(root, rules.marker_dialects)
    return write_changes(root, edits_for(rules, files, selections, now, action))


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


COMMIT_PUSHED = "CommitPushed"
WAITING = "waiting"
"""An `Applied` status: another gitward holds the branch's lease, nothing was pushed."""
PUSH_FAILED = "PushFailed"


def apply_commits(store: Store, rules: RuleSet, planned: RepoPlan, now: datetime, *, workdir: Path, ssh_command: str | None, token: str | None,
                  holder: str, plan_id: str | None = None,
                  read_secret: SecretReader | None = None, clock: Clock = utcnow,
                  log: RunLog | None = None) -> list[Applied]:
    """Carry out every commit action on a fresh clone of its source, one writer per branch.

    Each action is recorded in `actions` (planned, then done/failed/skipped) under `plan_id`
    (None: a random one). On a push race the executor re-plans on the new head with the same
    rules and selections. Every commit is dated `now`, when gitward planned it, not when git
    happened to run: the history agrees with the recorded actions and an injected clock. The
    commit is signed, pushed with options and through a proxy as its automations and source ask
    (engine/reconcile/pushsettings.py; their Secrets are read with `read_secret`); an action
    whose Secrets cannot be read or whose key does not sign fails, never pushes unsigned.

    The push holds its branch's lease, renewed (`hold_renewed`, with `clock` and `log`), so a
    writer killed mid-push blocks the branch for `LEASE_TTL` at most. An action whose branch
    another gitward is writing to is `waiting` (recorded as skipped, with the reason): nothing
    was pushed, and the caller must not call that success.
    """
    plan_id = plan_id or uuid.uuid4().hex[:12]
    outcomes: list[Applied] = []
    for action in planned.plan.actions:
        action_id = start_action(store, plan_id=plan_id, type=action.TYPE, target=action.target,
                                 payload=action.to_json(), now=now)

        def edit(worktree: Path, action: CommitAction = action) -> list[str]:
            return _replan(worktree, rules, planned.selections, now, action)

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
                with hold_renewed(store, git_lease_name(action.url, action.push_branch), holder,
                                  clock, log):
                    finish_interrupted(store, action.target, before=now - LEASE_TTL, now=now)
                    result = commit_and_push(request, edit, workdir=workdir)
        except LeaseHeld as err:
            waiting = f"waiting, not pushed: {err}"
            finish_action(store, action_id, status="skipped", now=now, error=waiting)
            outcomes.append(Applied(action, WAITING, waiting))
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


@dataclass(frozen=True)
class LocalUpdate:
    """What `images update` did for one commit action in the user's checkout."""

    applied: Applied
    written: tuple[str, ...]
    attempts: int = 0
    """Pushes tried (a rejected push is rebased and tried again); 0 when nothing was pushed."""


REPLANS = 3
"""How many times `images update --push` re-plans on a new head after a conflicting push."""


def update_checkout(store: Store, rules: RuleSet, planned: RepoPlan, root: Path, now: datetime,
                    *, commit: bool, push: bool, holder: str,
                    plan_id: str | None = None) -> list[LocalUpdate]:
    """`images update`: write each commit action into the checkout at `root`, commit it, and
    push it, as `apply` and `run` do: the push holds the branch's lease, so it never races a
    `gitward run` pushing the same branch, and each commit is recorded in `actions` with its
    event. A push that conflicts with someone's change to the same lines is re-planned on the
    new head (`_push_replanning`). A commit or push that fails is recorded, then raised (a
    CheckoutError)."""
    plan_id = plan_id or uuid.uuid4().hex[:12]
    done: list[LocalUpdate] = []
    for action in planned.plan.actions:
        written = tuple(write_changes(root, planned.texts[action.target]))
        if not commit or not written:
            done.append(LocalUpdate(Applied(action, "written", "written, not committed"), written))
            continue
        action_id = start_action(store, plan_id=plan_id, type=action.TYPE, target=action.target,
                                 payload=action.to_json(), now=now)
        attempts = 0
        try:
            committed = commit_files(root, list(written), action.author, action.message)
            sha: str | None = committed
            if push:
                with hold_renewed(store, git_lease_name(action.url, action.push_branch), holder,
                                  utcnow):
                    finish_interrupted(store, action.target, before=now - LEASE_TTL, now=now)
                    sha, attempts, written = _push_replanning(root, rules, planned, action,
                                                              now, committed, written)
        except LeaseHeld as err:
            waiting = f"committed locally, not pushed: {err}"
            finish_action(store, action_id, status="skipped", now=now, error=waiting)
            done.append(LocalUpdate(Applied(action, WAITING, waiting, sha), written))
            continue
        except CheckoutError as err:
            finish_action(store, action_id, status="failed", now=now, error=str(err))
            _commit_event(store, Applied(action, "failed", str(err)), now)
            raise
        if push and sha is None:
            status, summary = "skipped", (f"nothing left to push on {action.push_branch}'s new "
                                          "head: someone pushed this update, or a gate now holds it")
        else:
            status, summary = ("done", f"pushed to {action.push_branch}") if push else (
                "skipped", "committed locally, not pushed")
        finish_action(store, action_id, status=status, now=now,
                      payload={"commit": sha, "attempts": attempts, "forced": False})
        applied = Applied(action, status, summary, sha)
        _commit_event(store, applied, now)
        done.append(LocalUpdate(applied, written, attempts))
    return done


def _push_replanning(root: Path, rules: RuleSet, planned: RepoPlan, action: CommitAction,
                     now: datetime, sha: str, written: tuple[str, ...],
                     ) -> tuple[str | None, int, tuple[str, ...]]:
    """Push commit `sha`; when it conflicts with a change pushed meanwhile to the same lines (a
    person's edit of a marked value), take it back, bring the checkout up to the new head and
    plan the action again there with the same selections, as the executor does on a lost race,
    up to `REPLANS` times. Returns the commit pushed (None when the new head already holds the
    update, or a rebase dropped the commit as already there: nothing of ours pushed), the
    pushes tried, and the files the commit changed."""
    attempts = 0
    for replan in range(REPLANS + 1):
        try:
            attempts += push_branch(root, action.push_branch)
            return pushed_commit(root, action.message), attempts, written
        except RebaseConflict:
            if replan == REPLANS:
                raise
            attempts += 1
        drop_commit(root, sha, action.push_branch)
        written = tuple(_replan(root, rules, planned.selections, now, action))
        if not written:
            return None, attempts, ()
        sha = commit_files(root, list(written), action.author, action.message)
    raise AssertionError("unreachable: the last re-plan's conflict is raised")


def unknown_of(planned: RepoPlan, automation: ImageUpdate) -> list[UnknownPolicy]:
    """The unknown policies an automation's markers need (it applies its own namespace's)."""
    return [u for u in planned.plan.unknown if u.policy.partition("/")[0] == automation.namespace]


@dataclass(frozen=True)
class RunSummary:
    """How an automation's run ended, as `gitward run` logs it and `reconciles` records it."""

    failed: bool
    revision: str
    message: str
    waiting: bool = False
    """A commit waits for another gitward writing to its branch: not done, not failed."""


def run_summary(applied: Sequence[Applied], unknown: Sequence[UnknownPolicy]) -> RunSummary:
    """The commits pushed and what became of each action; `no updates` when there was none,
    never without the unknown policies that make "no updates" unsure."""
    unsure = f"; unknown: {', '.join(u.policy for u in unknown)}" if unknown else ""
    if not applied:
        return RunSummary(False, "", f"no updates{unsure}")
    return RunSummary(any(a.status == "failed" for a in applied),
                      ",".join(a.commit for a in applied if a.commit),
                      "; ".join(f"{a.action.target}: {a.summary}" for a in applied) + unsure,
                      any(a.status == WAITING for a in applied))


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
