"""Image repositories and policies: scan (or import) tags into the ledger, then decide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Callable, Iterable, Sequence

from engine.errors import GitwardError
from engine.evaluate.decision import ScanFacts, decide
from engine.evaluate.policy import Evaluation
from engine.evaluate.tagfilter import Exclusions
from engine.model import (
    Decision,
    ImagePolicy,
    ImageRepository,
    ImageScan,
    ListedTag,
    RuleSet,
)
from engine.observe.dockerconfig import (
    Credentials,
    credentials_from_docker_config,
    credentials_from_secret,
)
from engine.observe.cluster import ClusterClient, read_object
from engine.observe.registry import list_tags, parse_image
from engine.rules.regex import PatternError
from engine.store import queries
from engine.store.db import Store

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The clock reconcilers read by default; tests pass their own."""
    return datetime.now(UTC)


def listed_tags(repository: ImageRepository, tags: Iterable[str]) -> list[ListedTag]:
    """Tags as the ledger records them: every tag, the excluded ones flagged (Flux drops them)."""
    try:
        exclusions = Exclusions.compile(repository.exclusion_list)
    except PatternError as err:
        raise GitwardError(f"ImageRepository {repository.key.ref}: exclusion list: {err}") from None
    unique = dict.fromkeys(tags)
    return [ListedTag(t, excluded=exclusions.excluding_pattern(t) is not None) for t in unique]


def record_tags(store: Store, repository: ImageRepository, tags: Sequence[str], *,
                started_at: datetime, finished_at: datetime) -> ImageScan:
    """Record a successful listing (from a registry or a file) as one scan."""
    return queries.record_image_scan(store, repository.key.ref, listed_tags(repository, tags),
                                     started_at=started_at, finished_at=finished_at)


SecretReader = Callable[[str, str], "dict[str, object] | None"]


def secret_reader(cluster: ClusterClient) -> SecretReader:
    """Reads an ImageRepository's `secretRef` Secret from the cluster."""
    def read(namespace: str, name: str) -> dict[str, object] | None:
        return read_object(cluster, "v1", "Secret", namespace, name)
    return read
"""Reads a Secret (namespace, name) from the cluster, when one is configured."""


def scan_repository(store: Store, repository: ImageRepository, *, clock: Clock = utcnow,
                    credentials: Credentials | None = None,
                    read_secret: SecretReader | None = None) -> ImageScan:
    """List the registry's tags and record the scan; a failure is recorded, not raised.

    Credentials: those given, else the Secret the repository's `secretRef` names when a cluster
    is configured (`read_secret`), else the docker config.json.
    """
    started = clock()
    try:
        image = parse_image(repository.image, repository.insecure)
        creds = credentials
        if creds is None and repository.secret_ref and read_secret is not None:
            secret = read_secret(repository.namespace, repository.secret_ref)
            creds = credentials_from_secret(secret, repository.namespace, repository.secret_ref,
                                            image.registry)
        creds = creds or credentials_from_docker_config(image.registry)
        listing = list_tags(image, credentials=creds, page_size=repository.page_size,
                            timeout=repository.effective_timeout.total_seconds())
        listed = listed_tags(repository, listing.tags)
    except GitwardError as err:
        return queries.record_image_scan(store, repository.key.ref, [], started_at=started,
                                         finished_at=clock(), error=str(err))
    return queries.record_image_scan(store, repository.key.ref, listed, started_at=started,
                                     finished_at=clock())


@dataclass(frozen=True)
class PolicyOutcome:
    decision: Decision
    evaluation: Evaluation | None


def decide_policy(store: Store, rules: RuleSet, policy: ImagePolicy, *, now: datetime,
                  deployed: str | None = None) -> PolicyOutcome:
    """Evaluate a policy on its repository's ledger and record the decision (or refusal)."""
    repo_key = policy.repository_key
    repository = rules.get(repo_key)
    repo = repository if isinstance(repository, ImageRepository) else None
    facts = ScanFacts(queries.latest_scan(store, repo_key.ref),
                      queries.tags(store, repo_key.ref, include_gone=True))
    last = queries.latest_selection(store, policy.key.ref)
    decision, evaluation = decide(policy, repo, facts, previous=last.selected_tag if last else None,
                                  deployed=deployed, now=now)
    return PolicyOutcome(queries.record_decision(store, decision), evaluation)


def policies_of(rules: RuleSet, repository: ImageRepository) -> list[ImagePolicy]:
    return [p for p in rules.image_policies if p.repository_key == repository.key]
