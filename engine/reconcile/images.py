"""Image repositories and policies: scan (or import) tags into the ledger, then decide."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping, Sequence

from engine.clock import Clock, utcnow
from engine.errors import GitwardError, RetryableError
from engine.evaluate.decision import PolicyMemos, ScanFacts, decide, decision_inputs
from engine.evaluate.policy import Evaluation, PolicyMemo
from engine.evaluate.tagfilter import Exclusions
from engine.model import (
    Decision,
    ImagePolicy,
    ImageRepository,
    ImageScan,
    ListedTag,
    ObjectKey,
    RuleSet,
    ScanStatus,
)
from engine.observe.dockerconfig import (
    Credentials,
    credentials_from_docker_config,
    credentials_from_secret,
)
from engine.observe.clientpool import RegistryClients
from engine.observe.transport import SecretReader
from engine.reconcile.transport import registry_transport
from engine.rules.ocitag import is_valid_tag, shown_tag
from engine.rules.regex import PatternError
from engine.store import decisions as policy_decisions, queries
from engine.store.db import Store

def listed_tags(repository: ImageRepository, tags: Iterable[str]) -> list[ListedTag]:
    """Tags as the ledger records them: every tag, the excluded ones flagged (Flux drops them),
    and so is every tag the OCI grammar does not allow (engine/rules/ocitag.py)."""
    try:
        exclusions = Exclusions.compile(repository.exclusion_list)
    except PatternError as err:
        raise GitwardError(f"ImageRepository {repository.key.ref}: exclusion list: {err}") from None
    valid: dict[str, bool] = {}  # each tag as shown, first listing first: is it a valid tag
    for tag in tags:
        if is_valid_tag(tag):
            valid.setdefault(tag, True)
        else:
            valid.setdefault(shown_tag(tag), False)
    excluded = exclusions.excluded(valid)  # one pass per pattern, not one search per tag
    return [ListedTag(t, excluded=not ok or t in excluded) for t, ok in valid.items()]


NEW_TAGS = "NewTags"
SCAN_FAILED = "ScanFailed"
NEW_SELECTION = "NewSelection"
DECISION_FAILED = "DecisionFailed"
SHOWN_TAGS = 5
"""How many new tags an event names before it says "and N more"."""


def record_tags(store: Store, repository: ImageRepository, tags: Sequence[str], *,
                started_at: datetime, finished_at: datetime) -> ImageScan:
    """Record a successful listing (from a registry or a file) as one scan."""
    before = _Before.of(store, repository)
    scan = queries.record_image_scan(store, repository.key.ref, listed_tags(repository, tags),
                                     started_at=started_at, finished_at=finished_at)
    before.event(store, scan)
    return scan


@dataclass(frozen=True)
class _Before:
    """The repository's scans before this one, as far as its event needs them."""

    last: ImageScan | None
    scanned_ok: bool

    @classmethod
    def of(cls, store: Store, repository: ImageRepository) -> _Before:
        ref = repository.key.ref
        last = queries.latest_scan(store, ref)
        ok = last is not None and (last.status is ScanStatus.OK
                                   or queries.latest_scan(store, ref, status=ScanStatus.OK) is not None)
        return cls(last, ok)

    def event(self, store: Store, scan: ImageScan) -> None:
        """An event when a scan finds tags the repository did not have, or starts failing (or
        fails differently): a scan like the one before says nothing, so an outage is one
        event, not one per retry."""
        last = self.last
        if scan.status is ScanStatus.FAILED:
            if last is not None and last.status is ScanStatus.FAILED and last.error == scan.error:
                return
            severity, reason, message = queries.EventSeverity.ERROR, SCAN_FAILED, f"scan failed: {scan.error}"
        elif not scan.new_tags:
            return
        elif not self.scanned_ok:
            severity, reason, message = queries.EventSeverity.INFO, NEW_TAGS, f"first scan: {scan.tag_count} tags"
        else:
            count = len(scan.new_tags)
            more = f" and {count - SHOWN_TAGS} more" if count > SHOWN_TAGS else ""
            severity, reason = queries.EventSeverity.INFO, NEW_TAGS
            message = (f"{count} new tag{'s' * (count != 1)}: {', '.join(shown_tag(t) for t in scan.new_tags[:SHOWN_TAGS])}"
                       f"{more} ({scan.tag_count} in all)")
        queries.record_event(store, queries.Event(
            time=scan.finished_at, object_kind=ImageRepository.KIND, object_name=scan.repository,
            severity=severity, reason=reason, message=message))




def registry_credentials(repository: ImageRepository, registry: str,
                         credentials: Credentials | None = None,
                         read_secret: SecretReader | None = None) -> Credentials | None:
    """Those given, else the Secret the repository's `secretRef` names when a cluster is
    configured (`read_secret`), else the docker config.json's for the registry."""
    creds = credentials
    if creds is None and repository.secret_ref and read_secret is not None:
        secret = read_secret(repository.namespace, repository.secret_ref)
        creds = credentials_from_secret(secret, repository.namespace, repository.secret_ref,
                                        registry)
    return creds or credentials_from_docker_config(registry)


def scan_repository(store: Store, repository: ImageRepository, *, clock: Clock = utcnow,
                    credentials: Credentials | None = None,
                    read_secret: SecretReader | None = None) -> ImageScan:
    """List the registry's tags and record the scan; a failure is recorded, not raised.

    Credentials: those given, else the Secret the repository's `secretRef` names when a cluster
    is configured (`read_secret`), else the docker config.json. TLS and proxy: the Secrets its
    `certSecretRef` and `proxySecretRef` name (engine/reconcile/transport.py).
    """
    started = clock()
    listed, error = _listing(repository, credentials, read_secret)
    with queries.batch(store):  # the scan and its event, or neither
        before = _Before.of(store, repository)
        scan = queries.record_image_scan(store, repository.key.ref, listed, started_at=started,
                                         finished_at=clock(),
                                         error=str(error) if error is not None else None)
        before.event(store, scan)
    return scan


def _listing(repository: ImageRepository, credentials: Credentials | None,
             read_secret: SecretReader | None,
             clients: RegistryClients | None = None) -> tuple[list[ListedTag], GitwardError | None]:
    """The registry's tags as the ledger records them, or why they could not be listed.
    `clients`: the pass's shared clients; without them the listing makes and closes its own."""
    # the registry client (httpx) only when a scan runs: a command that decides from the
    # recorded tags (`plan --offline`) never imports it (tests/e2e/test_lazy_imports.py)
    from engine.observe.registry import list_tags, parse_image
    try:
        image = parse_image(repository.image, repository.insecure)
        creds = registry_credentials(repository, image.registry, credentials, read_secret)
        transport = registry_transport(repository, read_secret)
        with ExitStack() as stack:
            if clients is not None:
                client = clients.client(image.registry, transport)
                stack.callback(clients.done, client)
            else:
                from engine.observe.httpclient import registry_client
                client = stack.enter_context(registry_client(transport))
            listing = list_tags(image, credentials=creds, page_size=repository.page_size,
                                timeout=repository.effective_timeout.total_seconds(),
                                client=client, hidden=transport.secrets())
        return listed_tags(repository, listing.tags), None
    except GitwardError as err:
        return [], err


@dataclass(frozen=True)
class PolicyOutcome:
    decision: Decision
    evaluation: Evaluation | None


def scan_facts(store: Store, repository: str) -> ScanFacts:
    """The repository's latest scan and its tags' history, as a policy decides on them."""
    return ScanFacts(*queries.scan_and_tags(store, repository))


def decide_policy(store: Store, rules: RuleSet, policy: ImagePolicy, *, now: datetime,
                  deployed: str | None = None, facts: ScanFacts | None = None,
                  memo: PolicyMemo | None = None) -> PolicyOutcome:
    """Evaluate a policy on its repository's ledger (`facts`, read when not given) and record
    the decision (or refusal); `memo` is the policy's when the caller keeps one (`PolicyMemos`).

    When the policy's latest decision was made from the same inputs (`decision_inputs`: the
    spec, the tags and their states, the previous and deployed tags), it is counted again and
    nothing is evaluated: `evaluation` is None and the decision comes without its trace."""
    repo_key = policy.repository_key
    repository = rules.get(repo_key)
    repo = repository if isinstance(repository, ImageRepository) else None
    if facts is None:
        facts = scan_facts(store, repo_key.ref)
    last = policy_decisions.latest_selection(store, policy.key.ref)
    previous = last.selected_tag if last else None
    inputs = decision_inputs(policy, repo, facts, previous=previous, deployed=deployed)
    repeated = policy_decisions.repeat_same_inputs(
        store, policy.key.ref, inputs, at=now, scan_id=facts.scan.id if facts.scan else None)
    if repeated is not None:
        return PolicyOutcome(repeated, None)
    decision, evaluation = decide(policy, repo, facts, previous=previous, deployed=deployed,
                                  now=now, memo=memo)
    return PolicyOutcome(record_decision(store, decision, inputs), evaluation)


def record_decision(store: Store, decision: Decision, inputs: str | None = None) -> Decision:
    """Record a policy's decision, with an event when its selection changes (Flux's "latest
    image tag updated") or when it starts failing (or fails differently); a decision like the
    one before says nothing."""
    tag, error = decision.selected_tag, decision.error
    failed = error is not None and decision.gate is None
    last = policy_decisions.latest_decision(store, decision.policy) if failed else None
    recorded = policy_decisions.record_decision(store, decision, inputs)
    if tag and not error:
        if tag == decision.previous_tag:
            return recorded
        was = f" (was {decision.previous_tag})" if decision.previous_tag else ""
        severity, reason, message = queries.EventSeverity.INFO, NEW_SELECTION, f"selected {tag}{was}"
    elif error and failed and (last is None or last.error != error):
        severity, reason, message = queries.EventSeverity.WARNING, DECISION_FAILED, error
    else:
        return recorded
    queries.record_event(store, queries.Event(
        time=decision.decided_at, object_kind=ImagePolicy.KIND, object_name=decision.policy,
        severity=severity, reason=reason, message=message))
    return recorded


_POLICY_INDEX: dict[int, tuple[RuleSet, dict[ObjectKey, list[ImagePolicy]]]] = {}
"""The policies of each image repository of the last rules asked about (by their id, with the
rules themselves to tell a new RuleSet that reuses an id)."""


def policies_of(rules: RuleSet, repository: ImageRepository) -> list[ImagePolicy]:
    """The policies that decide on `repository`, in the rules' order. Indexed once per RuleSet:
    a pass over N repositories looked through every policy N times (N x N at 500)."""
    found = _POLICY_INDEX.get(id(rules))
    if found is None or found[0] is not rules:
        by_repository: dict[ObjectKey, list[ImagePolicy]] = {}
        for policy in rules.image_policies:
            by_repository.setdefault(policy.repository_key, []).append(policy)
        _POLICY_INDEX.clear()
        found = _POLICY_INDEX[id(rules)] = (rules, by_repository)
    return list(found[1].get(repository.key, ()))


def is_suspended(store: Store, rule: ImagePolicy | ImageRepository) -> bool:
    """Suspended in its rule (`spec.suspend`) or in the store (`gitward suspend`)."""
    return rule.suspend or queries.is_suspended(store, rule.KIND, rule.key.ref)


@dataclass(frozen=True)
class RepositoryOutcome:
    """One reconcile of an ImageRepository: its scan, then its policies' decisions."""

    scan: ImageScan
    decisions: tuple[PolicyOutcome, ...] = ()
    suspended: tuple[str, ...] = ()
    """Policies left alone because they are suspended."""
    permanent: bool = False
    """The scan failed in a way retrying cannot heal (engine/errors.py RetryableError)."""


def reconcile_repository(store: Store, rules: RuleSet, repository: ImageRepository, *,
                         deployed: Mapping[str, str], clock: Clock = utcnow,
                         read_secret: SecretReader | None = None,
                         memos: PolicyMemos | None = None,
                         clients: RegistryClients | None = None) -> RepositoryOutcome:
    """Scan the repository and decide each of its policies that is not suspended, with the tags
    git deploys now (`deployed`, by policy): the one way `gitward run` and `gitward reconcile
    image repository` do it. After a failed scan nothing is decided. `memos`: the daemon's;
    `clients`: the pass's registry clients (`gitward run`)."""
    started = clock()
    listed, error = _listing(repository, None, read_secret, clients)
    decided: list[PolicyOutcome] = []
    left: list[str] = []
    # The scan, its event, the decisions and theirs in one transaction, after the listing:
    # evaluations only, no network. The decisions take the tags the scan compared
    # (`queries.record_scan_and_tags`) instead of reading them again.
    with queries.batch(store):
        before = _Before.of(store, repository)
        scan, latest, tags = queries.record_scan_and_tags(
            store, repository.key.ref, listed, started_at=started, finished_at=clock(),
            error=str(error) if error is not None else None)
        before.event(store, scan)
        if scan.status is ScanStatus.FAILED:
            return RepositoryOutcome(scan, permanent=isinstance(error, RetryableError)
                                     and error.permanent)
        facts = ScanFacts(latest, tags)
        for policy in policies_of(rules, repository):
            if is_suspended(store, policy):
                left.append(policy.key.ref)
                continue
            decided.append(decide_policy(store, rules, policy, now=clock(),
                                         deployed=deployed.get(policy.key.ref), facts=facts,
                                         memo=memos.of(policy) if memos is not None else None))
    return RepositoryOutcome(scan, tuple(decided), tuple(left))
