"""A Kustomization, end to end: the source's revision, rendered, applied to the cluster.

`--with-source` fetches the GitRepository first and records its revision; without it, the last
recorded revision is checked out again (exactly that commit), as Flux applies the artifact
source-controller last stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from engine.errors import GitwardError, UserError
from engine.model import GitRef, GitSource, Kustomization, ObjectKey, RuleSet
from engine.observe.cluster import ClusterClient
from engine.observe.git import Checkout, fetch_source
from engine.reconcile.build import build_kustomization
from engine.reconcile.cluster import SyncResult, sync_kustomization
from engine.reconcile.sources import reconcile_source
from engine.store import queries
from engine.store.db import Store


class SourceNotReady(GitwardError):
    """The Kustomization's source has no usable revision (exit 1)."""


@dataclass(frozen=True)
class KustomizationOutcome:
    kustomization: Kustomization
    revision: str
    result: SyncResult | None = None
    skipped: str = ""


def source_of(rules: RuleSet, ks: Kustomization) -> GitSource:
    ref = ks.source_ref
    source = rules.get(ObjectKey(GitSource.KIND, ref.namespace or ks.namespace, ref.name))
    if not isinstance(source, GitSource):
        raise UserError(f"Kustomization {ks.key.ref}: GitRepository "
                        f"{ref.namespace or ks.namespace}/{ref.name} is not defined")
    return source


def checkout_for(store: Store, source: GitSource, *, with_source: bool, cache_dir: Path,
                 ssh_command: str | None, token: str | None) -> Checkout:
    """The files of the revision to apply: fetched now, or the last recorded one again."""
    if with_source:
        outcome = reconcile_source(store, source, cache_dir=cache_dir, ssh_command=ssh_command,
                                   token=token)
        if outcome.checkout is None:
            raise SourceNotReady(f"GitRepository {source.key.ref}: {outcome.error}")
        return outcome.checkout
    last = queries.latest_git_revision(store, source.key.ref)
    if last is None:
        raise SourceNotReady(f"GitRepository {source.key.ref} has no recorded revision yet; "
                             "run with --with-source")
    pinned = replace(source, ref=GitRef(branch=source.ref.branch, commit=last.sha))
    return fetch_source(pinned, cache_dir=cache_dir, ssh_command=ssh_command, token=token)


def reconcile_kustomization(store: Store, rules: RuleSet, ks: Kustomization, *,
                            client: ClusterClient, now: datetime, with_source: bool,
                            cache_dir: Path, ssh_command: str | None = None,
                            token: str | None = None) -> KustomizationOutcome:
    """Fetch (or re-check-out) the source, render the path, apply, prune, check health."""
    if ks.suspend or queries.is_suspended(store, Kustomization.KIND, ks.key.ref):
        return KustomizationOutcome(ks, "", skipped=f"Kustomization {ks.key.ref} is suspended")
    source = source_of(rules, ks)
    checkout = checkout_for(store, source, with_source=with_source, cache_dir=cache_dir,
                            ssh_command=ssh_command, token=token)
    built = build_kustomization(checkout.path, ks, source=source)
    result = sync_kustomization(store, ks, built.manifests, checkout.revision, client=client,
                                now=now)
    return KustomizationOutcome(ks, checkout.revision, result)
