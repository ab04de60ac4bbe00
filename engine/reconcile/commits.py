"""Image updates carried out: write a plan's changes into a checkout, commit, push.

`gitward apply` and the daemon commit on a clone of each source (engine/act/git.py);
`gitward images update` writes into the user's checkout and may commit and push it. Either
way the push holds its branch's lease and each commit action is recorded with its event. A
plan (engine/reconcile/updates.py) does not import this module, nor GitPython through it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
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
from engine.clock import Clock, utcnow
from engine.evaluate.plan import Selection, edits_for
from engine.model import ActionStatus, CommitAction, ImageUpdate, RuleSet, UnknownPolicy
from engine.observe.git import SourceError
from engine.observe.transport import SecretError, SecretReader
from engine.reconcile.heartbeat import LEASE_TTL, hold_renewed
from engine.reconcile.pushsettings import PushSettingsError, push_settings
from engine.reconcile.repo import read_marked_files
from engine.reconcile.telemetry import RunLog
from engine.reconcile.updates import RepoPlan
from engine.store import queries
from engine.store.actions import finish_action, finish_interrupted, start_action
from engine.store.db import Store
from engine.store.leases import LeaseHeld, git_lease_name


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


class CommitOutcome(StrEnum):
    """What became of one commit action, as `apply`, `images update` and `run` report it."""

    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"  # another gitward holds the branch's lease: nothing pushed (skipped)
    WRITTEN = "written"  # written into the checkout, not committed (no action recorded)


@dataclass(frozen=True)
class Applied:
    """What became of one commit action."""

    action: CommitAction
    status: CommitOutcome
    summary: str
    commit: str | None = None

    @property
    def unfinished(self) -> bool:
        """It failed, or waits for another gitward writing to its branch (nothing pushed)."""
        return self.status in (CommitOutcome.FAILED, CommitOutcome.WAITING)


COMMIT_PUSHED = "CommitPushed"
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
            finish_action(store, action_id, status=ActionStatus.SKIPPED, now=now, error=waiting)
            outcomes.append(Applied(action, CommitOutcome.WAITING, waiting))
            continue
        except (SecretError, SigningError, PushSettingsError, SourceError) as err:
            finish_action(store, action_id, status=ActionStatus.FAILED, now=now, error=str(err))
            applied = Applied(action, CommitOutcome.FAILED, str(err))
            _commit_event(store, applied, now)
            outcomes.append(applied)
            continue
        status = {CommitStatus.PUSHED: ActionStatus.DONE,
                  CommitStatus.UNCHANGED: ActionStatus.SKIPPED}.get(result.status, ActionStatus.FAILED)
        finish_action(store, action_id, status=status, now=now, error=result.error,
                      payload={"commit": result.commit, "attempts": result.attempts,
                               "forced": result.forced})
        applied = Applied(action, CommitOutcome(status.value), result.summary, result.commit)
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
            done.append(LocalUpdate(Applied(action, CommitOutcome.WRITTEN, "written, not committed"), written))
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
            finish_action(store, action_id, status=ActionStatus.SKIPPED, now=now, error=waiting)
            done.append(LocalUpdate(Applied(action, CommitOutcome.WAITING, waiting, sha), written))
            continue
        except CheckoutError as err:
            finish_action(store, action_id, status=ActionStatus.FAILED, now=now, error=str(err))
            _commit_event(store, Applied(action, CommitOutcome.FAILED, str(err)), now)
            raise
        if push and sha is None:
            status, summary = ActionStatus.SKIPPED, (f"nothing left to push on {action.push_branch}'s new "
                                          "head: someone pushed this update, or a gate now holds it")
        else:
            status, summary = (ActionStatus.DONE, f"pushed to {action.push_branch}") if push else (
                ActionStatus.SKIPPED, "committed locally, not pushed")
        finish_action(store, action_id, status=status, now=now,
                      payload={"commit": sha, "attempts": attempts, "forced": False})
        applied = Applied(action, CommitOutcome(status.value), summary, sha)
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
    return RunSummary(any(a.status is CommitOutcome.FAILED for a in applied),
                      ",".join(a.commit for a in applied if a.commit),
                      "; ".join(f"{a.action.target}: {a.summary}" for a in applied) + unsure,
                      any(a.status is CommitOutcome.WAITING for a in applied))


def _commit_event(store: Store, applied: Applied, now: datetime) -> None:
    """An event on each automation of a pushed or failed commit (nothing to commit says nothing)."""
    action = applied.action
    if applied.status is CommitOutcome.DONE and applied.commit:
        changes = ", ".join(dict.fromkeys(f"{c.old} -> {c.new}" for c in action.files))
        severity, reason = queries.EventSeverity.INFO, COMMIT_PUSHED
        message = f"pushed {applied.commit[:7]} to {action.push_branch}: {changes}"
    elif applied.status is CommitOutcome.FAILED:
        severity, reason = queries.EventSeverity.ERROR, PUSH_FAILED
        message = f"commit to {action.push_branch} not pushed: {applied.summary}"
    else:
        return
    for automation in action.automations:
        queries.record_event(store, queries.Event(
            time=now, object_kind=ImageUpdate.KIND, object_name=automation, severity=severity,
            reason=reason, message=message))
