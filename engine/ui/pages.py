"""What each page shows, read from the rules and the store: readers only, never a write.

Each function returns plain frozen data for one template; the words come from the same
functions the CLI prints with (`object_status` for `gitward get`, `explain` for `gitward
explain`), so the page and the terminal never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import median
from dataclasses import dataclass, replace

from engine.evaluate.explain import (
    Explanation,
    decision_lints,
    explain,
    explained,
    is_gate,
    lints_need_value,
)
from engine.model import (
    Decision,
    GitSource,
    ImagePolicy,
    ImageRepository,
    ImageScan,
    ImageUpdate,
    Kustomization,
    OCISource,
    ObjectKey,
    RegistryTag,
    Rule,
    TagVerdict,
)
from engine.reconcile.repo import Loaded
from engine.redact import public_url, scrub
from engine.store import decisions as policy_decisions, queries
from engine.store.db import Store
from engine.store.leadtime import LeadTime, lead_times
from engine.store.status import ObjectStatus, object_status, short_revision
from engine.ui.leadplot import LeadPlot, duration, lead_plot
from engine.ui.timeline import Timeline, timeline

RECENT = 20
"""Decisions read to find the one to explain and the gate after it (as `gitward explain`)."""
HISTORY = 500
"""Decisions drawn on a policy's timeline, newest first."""


@dataclass(frozen=True)
class Row:
    """One object on the overview: its status as `gitward get` says it, and what else matters."""

    status: ObjectStatus
    detail: str = ""
    """A source's URL (credentials removed), a policy's repository."""
    held: str = ""
    lints: tuple[str, ...] = ()
    link: str = ""
    deployed: str = ""
    """A policy's tag in git now, from the checkout's markers."""


@dataclass(frozen=True)
class Section:
    title: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Overview:
    sections: tuple[Section, ...]
    suspensions: tuple[queries.Suspension, ...]
    skipped: tuple[str, ...]
    store: str


@dataclass(frozen=True)
class LedgerRow:
    """A tag of the repository's ledger, with what each policy's latest decision made of it."""

    tag: RegistryTag
    verdicts: tuple[str, ...]


@dataclass(frozen=True)
class RepositoryPage:
    repository: ImageRepository
    status: ObjectStatus
    image: str
    policies: tuple[ImagePolicy, ...]
    ledger: tuple[LedgerRow, ...]
    scans: tuple[ImageScan, ...]


@dataclass(frozen=True)
class EventsPage:
    events: tuple[queries.Event, ...]
    """Newest first, messages scrubbed of credentials."""
    kinds: tuple[str, ...]
    severities: tuple[str, ...]
    scanned: int
    """How many of the most recent events (of the object, when one is named) were read."""
    last_id: int
    """The newest event read: the live stream starts after it."""


@dataclass(frozen=True)
class PolicyPage:
    policy: ImagePolicy
    status: ObjectStatus
    explanation: Explanation | None
    decision: Decision | None
    trace: tuple[TagVerdict, ...]
    verdicts: tuple[str, ...]
    """Every verdict in the latest decision's trace, for the filter."""
    plot: Timeline
    deployed: str | None
    """The tag the checkout's markers deploy; None when no marker names the policy."""


def policy_link(policy: ImagePolicy) -> str:
    return f"/policy/{policy.namespace}/{policy.name}"


def repository_link(repository: ImageRepository) -> str:
    return f"/repository/{repository.namespace}/{repository.name}"


def kustomization_link(kustomization: Kustomization) -> str:
    return f"/kustomization/{kustomization.namespace}/{kustomization.name}"


def automation_link(automation: ImageUpdate) -> str:
    return f"/automation/{automation.namespace}/{automation.name}"


def status_of(store: Store | None, rule: Rule) -> ObjectStatus:
    """The object's status as `gitward get` says it, its message scrubbed."""
    status = object_status(store, rule)
    return replace(status, message=scrub(status.message))


def _policy_row(store: Store | None, policy: ImagePolicy, deployed: Mapping[str, str]) -> Row:
    """The policy's status, the gate holding it back and its lints; the decision's trace is
    decoded only when a lint names the selected tag's value."""
    status = status_of(store, policy)
    decision, gate = explained(policy_decisions.decisions(store, policy.key.ref, limit=RECENT)) \
        if store is not None else (None, None)
    lints: tuple[str, ...] = ()
    if store is not None and decision is not None:
        value = None
        if lints_need_value(policy) and decision.selected_tag:
            traced = policy_decisions.decision_trace(store, decision).trace
            value = next((t.value for t in traced if t.tag == decision.selected_tag), None)
        lints = tuple(message for _, message in decision_lints(policy, decision.selected_tag, value))
    return Row(status, detail=policy.repository_key.ref,
               held=scrub(gate.held) if gate else "",
               lints=lints, link=policy_link(policy), deployed=deployed.get(policy.key.ref, ""))


def drift(applied: str, fetched: str) -> str:
    """Whether the cluster runs what the source holds: the revision last applied against the
    one last fetched ("" when either is not known yet)."""
    if not applied or not fetched:
        return ""
    if applied == fetched:
        return "in sync with its source"
    return f"behind: its source is at {short_revision(fetched)}, not applied yet"


def _kustomization_row(store: Store | None, kustomization: Kustomization,
                       fetched: Mapping[tuple[str, str, str], str]) -> Row:
    status = status_of(store, kustomization)
    ref = kustomization.source_ref
    source = fetched.get((str(ref.kind), ref.namespace or kustomization.namespace, ref.name), "")
    return Row(status, detail=drift(status.revision, source), link=kustomization_link(kustomization))


def overview(loaded: Loaded, store: Store | None, deployed: Mapping[str, str]) -> Overview:
    """Every object of every cluster, by kind, with its state (a policy's with the tag git
    `deployed`); what was skipped and why."""
    sources: list[Row] = []
    kustomizations: list[Row] = []
    repositories: list[Row] = []
    policies: list[Row] = []
    updates: list[Row] = []
    for cluster in loaded.clusters:
        rules = cluster.rules
        fetching: list[GitSource | OCISource] = [*rules.sources, *rules.oci_sources]
        found = [Row(status_of(store, s), detail=public_url(s.url)) for s in fetching]
        fetched = {(r.status.kind, r.status.namespace, r.status.name): r.status.revision for r in found}
        sources += found
        kustomizations += [_kustomization_row(store, k, fetched) for k in rules.kustomizations]
        repositories += [Row(status_of(store, r), detail=public_url(r.image),
                             link=repository_link(r)) for r in rules.image_repositories]
        policies += [_policy_row(store, p, deployed) for p in rules.image_policies]
        updates += [Row(status_of(store, u), link=automation_link(u)) for u in rules.image_updates]
    sections = (Section("Sources", tuple(sources)), Section("Kustomizations", tuple(kustomizations)),
                Section("Image repositories", tuple(repositories)),
                Section("Image policies", tuple(policies)),
                Section("Image update automations", tuple(updates)))
    skipped = tuple(scrub(f"{s.key.kind} {s.key.ref}: {s.reason}") for s in loaded.skipped)
    return Overview(sections, queries.list_suspensions(store) if store is not None else (),
                    skipped, store.display_url if store is not None else "no state store")


def find_rule(loaded: Loaded, kind: str, namespace: str, name: str) -> Rule | None:
    """The object of `kind` (its Flux kind) and name in whichever cluster holds it."""
    key = ObjectKey(kind, namespace, name)
    for cluster in loaded.clusters:
        found = cluster.rules.get(key)
        if found is not None:
            return found
    return None


def repository_page(loaded: Loaded, store: Store | None,
                    repository: ImageRepository) -> RepositoryPage:
    """The repository's ledger (every tag, gone and excluded ones too) beside each policy's
    latest verdict on it, and its recent scans."""
    policies = tuple(p for c in loaded.clusters for p in c.rules.image_policies
                     if p.repository_key == repository.key)
    ledger: tuple[RegistryTag, ...] = ()
    scans: tuple[ImageScan, ...] = ()
    decided: dict[str, dict[str, tuple[int | None, str]]] = {}
    if store is not None:
        ledger = queries.tags(store, repository.key.ref, include_gone=True)
        scans = queries.scans(store, repository.key.ref)
        decided = {policy: policy_decisions.decision_verdicts(store, decision) for policy, decision
                   in policy_decisions.evaluated_by_policy(store, repository.key.ref).items()}
    verdicts = [decided.get(p.key.ref, {}) for p in policies]
    rows = tuple(LedgerRow(t, tuple(v.get(t.tag, (None, ""))[1] for v in verdicts))
                 for t in sorted(ledger, key=lambda t: (t.first_seen, t.tag), reverse=True))
    return RepositoryPage(repository, status_of(store, repository), public_url(repository.image),
                          policies, rows, scans)


def policy_page(store: Store | None, policy: ImagePolicy, verdict: str = "",
                deployed: str | None = None) -> PolicyPage:
    """The explanation of the policy's last decision, its timeline, and the latest trace
    (only the tags with `verdict`, when one is given)."""
    status = status_of(store, policy)
    history: Sequence[Decision] = ()
    tags: Sequence[RegistryTag] = ()
    if store is not None:
        history = policy_decisions.decisions(store, policy.key.ref, limit=HISTORY)
        tags = queries.tags(store, policy.repository_key.ref, include_gone=True)
    decision, gate = explained(history[:RECENT])
    if store is not None and decision is not None:
        decision = policy_decisions.decision_trace(store, decision)
    words = explain(policy, decision, gate) if decision is not None else None
    trace = decision.trace if decision is not None else ()
    verdicts = tuple(sorted({t.verdict for t in trace}))
    shown = tuple(t for t in trace if not verdict or t.verdict == verdict)
    plot = timeline(tags, tuple(d for d in history if d.selected_tag or is_gate(d)), deployed)
    return PolicyPage(policy, status, words, decision, shown, verdicts, plot, deployed)


EVENTS = 500
"""Events read for the events page: the most recent ones, then filtered by severity."""


def events_page(loaded: Loaded, store: Store | None, kind: str = "", name: str = "",
                severity: str = "") -> EventsPage:
    """The most recent events, of one object kind (and name) when given, of one severity when
    given, newest first."""
    kinds = tuple(sorted({r.KIND for c in loaded.clusters for r in c.rules.all()}))
    read = queries.list_events(store, object_kind=kind or None, object_name=name or None,
                               limit=EVENTS) if store is not None else ()
    shown = tuple(replace(e, message=scrub(e.message)) for e in reversed(read)
                  if not severity or e.severity == severity)
    last = max((e.id or 0 for e in read), default=0)
    return EventsPage(shown, kinds, tuple(queries.EventSeverity), len(read), last)


def events_after(store: Store | None, after_id: int, kind: str = "", name: str = "",
                 severity: str = "") -> tuple[tuple[queries.Event, ...], int]:
    """The events recorded since `after_id` that the events page's filters let through, oldest
    first, scrubbed; and the id to read after next time (every event read counts, shown or not)."""
    if store is None:
        return (), after_id
    read = queries.events_after(store, after_id, object_kind=kind or None, object_name=name or None)
    shown = tuple(replace(e, message=scrub(e.message)) for e in read
                  if not severity or e.severity == severity)
    return shown, max((e.id or 0 for e in read), default=after_id)


LEAD_TIMES = 1000
"""Commits read for the lead-time page: the most recent ones."""


@dataclass(frozen=True)
class LeadTimePage:
    rows: tuple[LeadTime, ...]
    """Oldest first."""
    plot: LeadPlot
    policies: tuple[str, ...]
    policy: str
    median_commit: str
    median_apply: str
    limit: int = LEAD_TIMES


def lead_time_page(loaded: Loaded, store: Store | None, policy: str = "") -> LeadTimePage:
    """Tag pushed -> commit -> applied for the most recent commits (of one policy when given)."""
    rows = lead_times(store, policy=policy or None, limit=LEAD_TIMES) if store is not None else ()
    applied = [r.seconds_to_apply for r in rows if r.seconds_to_apply is not None]
    policies = tuple(sorted({p.key.ref for c in loaded.clusters for p in c.rules.image_policies}))
    return LeadTimePage(rows, lead_plot(rows), policies, policy,
                        duration(int(median(r.seconds_to_commit for r in rows))) if rows else "none",
                        duration(int(median(applied))) if applied else "none")
