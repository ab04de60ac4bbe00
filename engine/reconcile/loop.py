"""The controller loop behind `gitward run`: every object reconciled on its own interval.

One process walks a `Schedule` (engine/evaluate/schedule.py): it takes the object due first,
reconciles it under a lease named `obj:<Kind>/<ns>/<name>` (so two gitwards on one store never
work on the same object at once), records the outcome, logs one line, and sleeps until the
next object is due. A failure is the object's own: it is retried with backoff while the others
keep their turns. A stop request (`stop` set, by a signal handler say) is looked at between
objects only, so a reconcile, and the writes it makes, always runs to its end.

Between objects, at least every `POLL`, the loop reads the store: suspensions, and reconcile
requests (`gitward reconcile` run anywhere against the same store), which make their object due
at once and are answered after its reconcile. It also re-reads the rules when the files under
`--repo` change (or, with `rules_source`, in that GitRepository's latest fetched checkout);
rules with errors are logged and the previous ones kept. A heartbeat thread
keeps this process's leases (`daemon:<holder>`, and the object being reconciled) alive, so a
lease outlives a gitward that died holding it by `LEASE_TTL` only.

The loop beats its `Pulse` (when given; `/healthz`) between objects and before each reconcile,
allowing that object's timeout. After a reconcile the loop counts it in `Metrics` (when given)
and sends the rules' alerts: one per pushed image-update commit, and one when an object starts
failing (or fails with a different message): the same failure retried is not sent again. A
failed alert is logged only.

Marked files are read once per pass: a pass is a run of reconciles with no wait between them in
which no object comes twice (a `--once` run is one pass). Its image repositories (the tags git
deploys) and automations (the plan) share one `MarkedTree` per checkout and revision; a wait,
an object due again or reloaded rules start the next pass, which reads the files afresh.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING


from engine.act.notify import Event, failure_event, held_event, notify, update_event
from engine.clock import Clock
from engine.errors import GitwardError, Problems, RetryableError
from engine.evaluate.decision import PolicyMemos
from engine.evaluate.order import dependency_order
from engine.evaluate.schedule import Entry, Outcome, Schedule
from engine.model import (
    GitSource,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    OCISource,
    ObjectKey,
    RuleSet,
    ScanStatus,
)
from engine.observe.clientpool import RegistryClients
from engine.observe.transport import SecretReader
from engine.reconcile.health import Pulse
from engine.reconcile.images import policies_of, reconcile_repository
from engine.reconcile.heartbeat import LEASE_TTL, Heartbeat
from engine.reconcile.notices import (
    CLEARED,
    IGNORED,
    LINTS,
    UNKNOWN,
    lint_line,
    policy_lints,
    say_once,
)
from engine.evaluate.discover import SourceHint
from engine.reconcile.repo import MarkedTrees, RepoSpec, load_repository

if TYPE_CHECKING:  # the kubernetes client is loaded only when a cluster is configured
    from engine.observe.cluster import ClusterClient
from engine.reconcile.sources import reconcile_oci_source, reconcile_source
from engine.reconcile.telemetry import LogLevel, Metrics, RunLog
from engine.rules.load import rule_files_fingerprint
from engine.reconcile.imagefacts import RegistryAccess
from engine.reconcile.commits import CommitOutcome, apply_commits, run_summary
from engine.reconcile.updates import for_automation, plan_checkout, unknown_of
from engine.store import queries
from engine.store.db import Store
from engine.store.leases import LeaseHeld, hold_lease
from engine.store.reconciles import record_reconcile
from engine.store.requests import answer_requests, pending_requests

POLL = timedelta(seconds=1)
"""Longest sleep: reconcile requests, suspensions and resumes are noticed at least this often."""

RELOAD_EVERY = timedelta(seconds=10)
"""How often the files under `--repo` are checked for changes to the rules."""


@dataclass(frozen=True)
class Result:
    """One reconcile: its outcome for the schedule, the revision it reached, and what happened.

    `permanent`: a failure retrying cannot heal (the schedule waits the interval, no backoff)."""

    outcome: Outcome
    revision: str = ""
    message: str = ""
    permanent: bool = False

    @staticmethod
    def failed(err: GitwardError) -> Result:
        """The failure `err` says, permanent when it says so (a RetryableError)."""
        return Result(Outcome.FAILED, message=str(err),
                      permanent=isinstance(err, RetryableError) and err.permanent)


@dataclass(frozen=True)
class Access:
    """What the reconcilers need to reach the outside: clones, git credentials, the cluster."""

    workdir: Path
    holder: str
    ssh_command: str | None = None
    token: str | None = None
    cluster: ClusterClient | None = None
    read_secret: SecretReader | None = None


class Controller:
    """Reconciles the objects of `rules` (read from the checkout `repo`) until `stop` is set."""

    def __init__(self, store: Store, rules: RuleSet, repo: Path, access: Access, log: RunLog, *,
                 clock: Clock, rng: random.Random, stop: threading.Event,
                 metrics: Metrics | None = None, rules_source: ObjectKey | None = None,
                 spec: RepoSpec | None = None,
                 hints: Mapping[ObjectKey, SourceHint] | None = None,
                 pulse: Pulse | None = None) -> None:
        self.store = store
        self.rules = rules
        self.repo = repo
        self.spec = spec or RepoSpec(repo)
        """How the rules are read again (`--cluster`, `--source`), from whichever checkout."""
        self.hints = dict(hints or {})
        """GitRepositories git does not hold, as the live cluster has them."""
        self.rules_source = rules_source
        """A GitRepository whose fetched checkout the rules are read from, once it is fetched."""
        self.access = access
        self.log = log
        self.clock = clock
        self.rng = rng
        self.stop = stop
        self.metrics = metrics
        self.pulse = pulse
        self._checkouts: dict[ObjectKey, tuple[Path, str]] = {}
        """Each source's latest fetched checkout and its revision: automations plan on it, not on
        --repo."""
        self._repo_revision = ""
        """The revision of `repo` when it is a fetched checkout (`rules_source`); "" for --repo."""
        self._marked = MarkedTrees()
        """The marked trees this pass read."""
        self._passed: set[ObjectKey] = set()
        """The objects this pass reconciled."""
        self.memos = PolicyMemos()
        """Each policy's PolicyMemo, kept across intervals while the policy is in the rules."""
        self._clients = RegistryClients()
        """The registry clients this pass shares (one per host and transport)."""
        self._failing: dict[ObjectKey, str] = {}
        """The failure last alerted for each object still failing."""
        self._fingerprint = rule_files_fingerprint(repo)
        self._next_reload_check: datetime | None = None
        self._heartbeat: Heartbeat | None = None

    def entries(self) -> list[Entry]:
        """Every object to reconcile, in the order a first pass takes them: sources (git, then
        OCI), image repositories, automations, then Kustomizations after those they dependsOn."""
        found: list[Entry] = [Entry(s.key, s.interval, s.interval) for s in self.rules.sources]
        found += [Entry(s.key, s.interval, s.interval) for s in self.rules.oci_sources]
        found += [Entry(r.key, r.interval, r.interval) for r in self.rules.image_repositories]
        found += [Entry(u.key, u.interval, u.interval) for u in self.rules.image_updates]
        if self.access.cluster is not None:
            found += [Entry(k.key, k.interval, k.effective_retry_interval)
                      for k in dependency_order(self.rules.kustomizations)]
        elif self.rules.kustomizations:
            self.log.write(LogLevel.WARNING, "no cluster configured (--kubeconfig, --context or "
                           "KUBECONFIG): Kustomizations are not reconciled",
                           kind=Kustomization.KIND, outcome="skipped")
        return found

    def run(self, *, once: bool = False) -> None:
        """Reconcile due objects until stopped; with `once`, stop when none is due any more."""
        entries = self.entries()
        schedule = Schedule(entries, self.clock(), self.rng,
                            None if once else self.recently_scanned())
        if self.metrics is not None:
            self.metrics.scheduled(entries)
        with Heartbeat(self.store, self.access.holder, self.clock, self.log) as heartbeat:
            self._heartbeat = heartbeat
            try:
                self._loop(schedule, once)
            finally:
                self._heartbeat = None
                self._clients.close()

    def recently_scanned(self) -> dict[ObjectKey, datetime]:
        """When each image repository is next due after its last successful scan in the store:
        a restarted gitward does not scan every registry at once (registries rate-limit), it
        resumes where the previous run was."""
        due: dict[ObjectKey, datetime] = {}
        for repository in self.rules.image_repositories:
            last = queries.latest_scan(self.store, repository.key.ref)
            if last is not None and last.status is ScanStatus.OK:
                due[repository.key] = last.started_at + repository.interval
        return due

    def _loop(self, schedule: Schedule, once: bool) -> None:
        while not self.stop.is_set():
            if self.pulse is not None:
                self.pulse.beat(POLL, "between objects")
            now = self.clock()
            self.reload(schedule, now)
            with queries.batch(self.store):  # one read of suspensions and requests
                suspended = self.suspended()
                self.take_requests(schedule, suspended, now)
            if self.metrics is not None:
                self.metrics.suspended(suspended)
            key = schedule.due(now, suspended)
            if key is None or key in self._passed:
                self.next_pass()
            if key is None:
                if once:
                    return
                wake = schedule.next_due_at(suspended)
                wait = POLL if wake is None else min(max(wake - now, timedelta()), POLL)
                self.stop.wait(wait.total_seconds())
                continue
            self._passed.add(key)
            self.log.write(LogLevel.DEBUG, "reconciling", kind=key.kind, object=key.ref)
            if self.pulse is not None:
                self.pulse.beat(_allowance(self.rules.get(key)), f"reconciling {key}")
            began = self.clock()
            started = time.monotonic()
            result = self.reconcile(key)
            seconds = time.monotonic() - started
            finished = self.clock()
            schedule.record(key, finished, result.outcome, permanent=result.permanent)
            self.log.reconciled(key, result.outcome, result.revision, result.message, seconds)
            if self.metrics is not None:
                self.metrics.reconciled(key, result.outcome, seconds, finished)
            if result.outcome is not Outcome.HELD:
                with queries.batch(self.store):
                    record_reconcile(self.store, key, outcome=result.outcome.value,
                                     revision=result.revision, message=result.message, at=finished)
                    answer_requests(self.store, key, made_before=began,
                                    handled_by=self.access.holder, outcome=result.outcome.value,
                                    revision=result.revision, message=result.message, now=finished)
            self.after(key, result, finished)

    def next_pass(self) -> None:
        """Forget what this pass read: the next one reads the marked files again (and opens
        its own registry connections)."""
        self._marked = MarkedTrees()
        self._clients.close()
        self._passed.clear()

    def after(self, key: ObjectKey, result: Result, at: datetime) -> None:
        """Alert when `key` starts failing or fails differently; forget its failure on success."""
        if result.outcome is Outcome.OK:
            self._failing.pop(key, None)
        elif result.outcome is Outcome.FAILED and self._failing.get(key) != result.message:
            self._failing[key] = result.message
            self.alert(failure_event(key, result.message, result.revision, at))

    def reload(self, schedule: Schedule, now: datetime) -> None:
        """Re-read the rules when the files they come from changed since they were read."""
        if self._next_reload_check is not None and now < self._next_reload_check:
            return
        self._next_reload_check = now + RELOAD_EVERY
        fingerprint = rule_files_fingerprint(self.repo)
        if fingerprint == self._fingerprint:
            return
        self._fingerprint = fingerprint
        problems = Problems()
        try:
            cluster = load_repository(self.spec.at(self.repo), problems, hints=self.hints).one()
        except GitwardError as err:
            self.log.write(LogLevel.ERROR, f"cannot read the rules: {err}; running on the previous "
                           "rules", repo=str(self.repo), outcome="kept")
            return
        for problem in problems.errors:
            self.log.write(LogLevel.ERROR, problem.render(excerpt=False), outcome="kept")
        previous = {rule.key: rule for rule in self.rules.all()}
        kept = [previous[s.key] for s in cluster.skipped if s.key in previous]
        for skipped in cluster.skipped:
            state = "kept its previous version" if skipped.key in previous else "left out"
            self.log.write(LogLevel.ERROR, f"{skipped.key.kind} {skipped.key.ref}: {skipped.reason}: "
                           f"{state}", outcome="kept" if skipped.key in previous else "skipped")
        rules = RuleSet.of([*cluster.rules.all(), *kept]) if kept else cluster.rules
        before = {rule.key for rule in self.rules.all()}
        after = {rule.key for rule in rules.all()}
        self.rules = rules
        self.memos.keep(rules.image_policies)
        self.next_pass()
        entries = self.entries()
        schedule.replace(entries, now)
        if self.metrics is not None:
            self.metrics.scheduled(entries)
        self.log.write(LogLevel.INFO, "rules reloaded", repo=str(self.repo),
                       added=str(len(after - before)), removed=str(len(before - after)),
                       scheduled=str(len(schedule)))

    def take_requests(self, schedule: Schedule, suspended: frozenset[ObjectKey],
                      now: datetime) -> None:
        """Make requested objects due now; answer at once the requests this process cannot serve."""
        for request in pending_requests(self.store):
            key = request.key
            if key in schedule and key not in suspended:
                schedule.hurry(key, now)
                continue
            if key in suspended:
                why = "it is suspended (gitward resume, or its rule's suspend)"
            elif key.kind == Kustomization.KIND and self.rules.get(key) is not None:
                why = "this gitward run has no cluster configured"
            else:
                why = f"it is not in the rules this gitward run reads from {self.repo}"
            answer_requests(self.store, key, made_before=request.requested_at,
                            handled_by=self.access.holder, outcome=Outcome.FAILED.value,
                            revision="", message=f"not reconciled: {why}", now=now)

    def alert(self, event: Event) -> None:
        """Send `event` to the alerts that want it; log (never raise) each failed delivery."""
        for delivery in notify(self.rules.alerts, event):
            if self.metrics is not None:
                self.metrics.delivered(delivery)
            if delivery.ok:
                self.log.write(LogLevel.DEBUG, "alert sent", alert=delivery.alert,
                               receiver=delivery.receiver, event=event.kind.value)
            else:
                self.log.write(LogLevel.WARNING, f"alert not delivered: {delivery.error}",
                               alert=delivery.alert, receiver=delivery.receiver,
                               event=event.kind.value)

    def say(self, key: ObjectKey, reason: str, lines: Sequence[str]) -> None:
        """Record and log what `key` has to say of `reason` (lints, unknown policies) when it
        changed since it was last said (engine/reconcile/notices.py)."""
        said = say_once(self.store, key, reason, lines, self.clock())
        for line in said.new:
            self.log.write(LogLevel.WARNING, line, kind=key.kind, object=key.ref, reason=reason)
        if said.cleared:
            self.log.write(LogLevel.INFO, CLEARED[reason], kind=key.kind, object=key.ref,
                           reason=reason)

    def suspended(self) -> frozenset[ObjectKey]:
        """Objects suspended by their rule or in the store (`gitward suspend`)."""
        keys = {rule.key for rule in self.rules.all() if getattr(rule, "suspend", False)}
        for s in queries.list_suspensions(self.store):
            namespace, _, name = s.object_name.partition("/")
            keys.add(ObjectKey(s.object_kind, namespace, name))
        return frozenset(keys)

    def reconcile(self, key: ObjectKey) -> Result:
        """Reconcile one object under its lease; a gitward error is this object's failure only."""
        name = f"obj:{key}"
        try:
            with hold_lease(self.store, name, self.access.holder, LEASE_TTL, self.clock()):
                if self._heartbeat is None:
                    return self._reconcile(key)
                with self._heartbeat.holding(name):
                    return self._reconcile(key)
        except LeaseHeld as err:
            return Result(Outcome.HELD, message=str(err))
        except GitwardError as err:
            return Result.failed(err)

    def _reconcile(self, key: ObjectKey) -> Result:
        rule = self.rules.get(key)
        with queries.batch(self.store):  # what the object (and its policies) have to say
            self.say(key, IGNORED, [lint_line(p) for p in getattr(rule, "ignored", ())])
            if isinstance(rule, ImageRepository):
                for policy in policies_of(self.rules, rule):
                    self.say(policy.key, LINTS, [lint_line(p) for p in policy_lints(policy)])
        if isinstance(rule, GitSource):
            return self._source(rule)
        if isinstance(rule, OCISource):
            return self._oci_source(rule)
        if isinstance(rule, ImageRepository):
            return self._image_repository(rule)
        if isinstance(rule, ImageUpdate):
            return self._image_update(rule)
        if isinstance(rule, Kustomization):
            return self._kustomization(rule)
        raise GitwardError(f"{key} is not a kind `gitward run` reconciles")

    def _source(self, source: GitSource) -> Result:
        outcome = reconcile_source(self.store, source, cache_dir=self.access.workdir,
                                   ssh_command=self.access.ssh_command, token=self.access.token,
                                   read_secret=self.access.read_secret, clock=self.clock)
        if outcome.checkout is None:
            assert outcome.error is not None
            return Result.failed(outcome.error)
        self._checkouts[source.key] = (outcome.checkout.path, outcome.checkout.revision)
        if source.key == self.rules_source and (outcome.changed or outcome.checkout.path != self.repo):
            self.repo = outcome.checkout.path
            self._repo_revision = outcome.checkout.revision
            self._next_reload_check = None  # look at the new revision's rules now
        return Result(Outcome.OK, outcome.checkout.revision,
                      "new revision" if outcome.changed else "revision unchanged")

    def _oci_source(self, source: OCISource) -> Result:
        outcome = reconcile_oci_source(self.store, source, cache_dir=self.access.workdir,
                                       read_secret=self.access.read_secret, clock=self.clock)
        if outcome.artifact is None:
            assert outcome.error is not None
            return Result.failed(outcome.error)
        return Result(Outcome.OK, outcome.artifact.revision,
                      "new artifact" if outcome.changed else "artifact unchanged")

    def _image_repository(self, repository: ImageRepository) -> Result:
        marked = self._marked.tree(self.repo, self._repo_revision, self.rules)
        done = reconcile_repository(self.store, self.rules, repository,
                                    deployed=marked.deployed, clock=self.clock,
                                    read_secret=self.access.read_secret, memos=self.memos,
                                    clients=self._clients)
        scan = done.scan
        if scan.status is ScanStatus.FAILED:
            return Result(Outcome.FAILED, message=f"scan failed: {scan.error}",
                          permanent=done.permanent)
        if self.metrics is not None:
            self.metrics.scanned(repository.key, repository.image, scan.tag_count)
        selected: list[str] = []
        refused: list[str] = []
        for outcome in done.decisions:
            decision = outcome.decision
            if decision.selected_tag is None:
                refused.append(f"ImagePolicy {decision.policy}: {decision.error}")
            else:
                selected.append(f"{decision.policy}={decision.selected_tag}")
        if refused:  # no scan id in the message: the same refusal is one alert, not one per scan
            return Result(Outcome.FAILED, ",".join(selected), "; ".join(refused))
        return Result(Outcome.OK, ",".join(selected), f"scan #{scan.id}: {scan.tag_count} tags")

    def _image_update(self, automation: ImageUpdate) -> Result:
        """Plan the checkout on the policies' decisions (made by the ImageRepository reconciles,
        reused) and carry out the commits this automation takes part in."""
        now = self.clock()
        root, revision = self._checkouts.get(
            ObjectKey(GitSource.KIND, automation.source_ref.namespace or automation.namespace,
                      automation.source_ref.name), (self.repo, self._repo_revision))
        planned = plan_checkout(self._marked.tree(root, revision, self.rules), self.rules,
                                self.store, now, record=True, reuse=True,
                                access=RegistryAccess(read_secret=self.access.read_secret),
                                memos=self.memos)
        for gate in planned.warned:  # once per change: the next pass holding it says nothing
            self.log.write(LogLevel.WARNING, f"update held: {gate.gate.value}: {gate.reason}",
                           kind=ImagePolicy.KIND, object=gate.policy, file=f"{gate.path}:{gate.line}",
                           current=gate.current, proposed=gate.proposed)
            self.alert(held_event(gate, now))
        # a policy's own lints are said by its ImageRepository's reconcile, on the policy
        # and each object's ignored fields by its own reconcile (IGNORED)
        of_policies = {p.message for policy in self.rules.image_policies
                       for p in policy_lints(policy)} | {p.message for p in self.rules.ignored()}
        self.say(automation.key, LINTS, [lint_line(p) for p in planned.plan.warnings
                                         if p.message not in of_policies])
        unknown = unknown_of(planned, automation)
        self.say(automation.key, UNKNOWN, [f"ImagePolicy {u.policy} is unknown: {u.reason} "
                                           f"({u.path}:{u.line})" for u in unknown])
        broken = [e.problem.message for e in planned.plan.errors if e.automation == automation.key.ref]
        if broken:
            return Result(Outcome.FAILED, message="; ".join(broken))
        applied = apply_commits(self.store, self.rules, for_automation(planned, automation.key.ref),
                                now, workdir=self.access.workdir,
                                ssh_command=self.access.ssh_command, token=self.access.token,
                                holder=self.access.holder, read_secret=self.access.read_secret,
                                clock=self.clock, log=self.log)
        for pushed in applied:
            if pushed.status is CommitOutcome.DONE and pushed.commit:
                self.alert(update_event(pushed.action, pushed.commit, self.clock()))
        ran = run_summary(applied, unknown)
        outcome = Outcome.FAILED if ran.failed else Outcome.HELD if ran.waiting else Outcome.OK
        return Result(outcome, ran.revision, ran.message)

    def _kustomization(self, ks: Kustomization) -> Result:
        assert self.access.cluster is not None  # entries() schedules none without a cluster
        from engine.reconcile.order import OrderedReconcile  # kubernetes: only with a cluster

        run = OrderedReconcile(self.store, self.rules, self.access.cluster, with_source=False,
                               cache_dir=self.access.workdir, ssh_command=self.access.ssh_command,
                               token=self.access.token, clock=self.clock,
                               read_secret=self.access.read_secret)
        done = run.reconcile(ks)
        if done.skipped:
            return Result(Outcome.OK, done.revision, done.skipped)
        if done.blocked or done.error:
            return Result(Outcome.FAILED, done.revision, done.blocked or done.error)
        assert done.result is not None
        summary = done.result.summary().replace("\n", "; ")
        return Result(Outcome.OK if done.result.ok else Outcome.FAILED, done.revision, summary)


def _allowance(rule: object) -> timedelta:
    """How long a reconcile of `rule` may take: its timeout (Flux's default: its interval)."""
    effective = getattr(rule, "effective_timeout", None)
    timeout = effective if isinstance(effective, timedelta) else getattr(rule, "timeout", None)
    return timeout if isinstance(timeout, timedelta) else timedelta()
