"""A Kustomization, end to end: the source's revision, rendered, applied to the cluster.

`--with-source` fetches the GitRepository first and records its revision; without it, the last
recorded revision is checked out again (exactly that commit), as Flux applies the artifact
source-controller last stored.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from engine.errors import GitwardError, UserError
from engine.model import GitRef, GitSource, Kustomization, ObjectKey, RuleSet
from engine.observe.git import Checkout, fetch_source
from engine.reconcile.sources import reconcile_source
from engine.store import queries
from engine.store.db import Store


class SourceNotReady(GitwardError):
    """The Kustomization's source has no usable revision (exit 1)."""


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
