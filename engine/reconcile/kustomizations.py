"""A Kustomization, end to end: the source's revision, rendered, applied to the cluster.

`--with-source` fetches the source first (a GitRepository's ref, an OCIRepository's artifact)
and records its revision; without it, the last recorded revision is used again (exactly that
commit, or that artifact: from the cache when it is still there, else pulled by its digest), as
Flux applies the artifact source-controller last stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from engine.clock import Clock, utcnow
from engine.errors import GitwardError, UserError
from engine.model import GitRef, GitSource, Kustomization, OCIRef, OCISource, ObjectKey, RuleSet, Source
from engine.observe.oci import cached_artifact, unpacked_root
from engine.observe.transport import SecretReader
from engine.reconcile.sources import fetch_git, pull, reconcile_oci_source, reconcile_source
from engine.store import queries
from engine.store.artifacts import latest_oci_revision
from engine.store.db import Store


class SourceNotReady(GitwardError):
    """The Kustomization's source has no usable revision (exit 1)."""


@dataclass(frozen=True)
class SourceTree:
    """The files a Kustomization is built from, at a revision: a git checkout's worktree, or
    an OCI artifact's unpacked directory."""

    revision: str
    path: Path


def source_of(rules: RuleSet, ks: Kustomization) -> Source:
    """The GitRepository or OCIRepository `ks.sourceRef` names; UserError when it is not defined."""
    ref = ks.source_ref
    key = ObjectKey(ref.kind.value, ref.namespace or ks.namespace, ref.name)
    source = rules.get(key)
    if not isinstance(source, (GitSource, OCISource)):
        raise UserError(f"Kustomization {ks.key.ref}: {key.kind} {key.ref} is not defined")
    return source


def checkout_for(store: Store, source: Source, *, with_source: bool, cache_dir: Path,
                 ssh_command: str | None, token: str | None,
                 read_secret: SecretReader | None = None, clock: Clock = utcnow) -> SourceTree:
    """The files of the revision to apply: fetched now, or the last recorded one again."""
    if isinstance(source, OCISource):
        return _artifact_for(store, source, with_source=with_source, cache_dir=cache_dir,
                             read_secret=read_secret, clock=clock)
    if with_source:
        outcome = reconcile_source(store, source, cache_dir=cache_dir, ssh_command=ssh_command,
                                   token=token, read_secret=read_secret, clock=clock)
        if outcome.checkout is None:
            raise SourceNotReady(f"GitRepository {source.key.ref}: {outcome.error}")
        return SourceTree(outcome.checkout.revision, outcome.checkout.path)
    last = queries.latest_git_revision(store, source.key.ref)
    if last is None:
        raise SourceNotReady(f"GitRepository {source.key.ref} has no recorded revision yet; "
                             "run with --with-source")
    pinned = replace(source, ref=GitRef(branch=source.ref.branch, commit=last.sha))
    checkout = fetch_git(pinned, cache_dir=cache_dir, ssh_command=ssh_command, token=token,
                         read_secret=read_secret)
    return SourceTree(checkout.revision, checkout.path)


def _artifact_for(store: Store, source: OCISource, *, with_source: bool, cache_dir: Path,
                  read_secret: SecretReader | None, clock: Clock) -> SourceTree:
    """An OCIRepository's artifact: pulled now, or the recorded one (cached, else by digest)."""
    operation = source.layer_selector.operation
    if with_source:
        outcome = reconcile_oci_source(store, source, cache_dir=cache_dir, read_secret=read_secret,
                                       clock=clock)
        if outcome.artifact is None:
            raise SourceNotReady(f"OCIRepository {source.key.ref}: {outcome.error}")
        return SourceTree(outcome.artifact.revision, unpacked_root(outcome.artifact.path, operation))
    last = latest_oci_revision(store, source.key.ref)
    if last is None:
        raise SourceNotReady(f"OCIRepository {source.key.ref} has no recorded artifact yet; "
                             "run with --with-source")
    path = cached_artifact(source, cache_dir=cache_dir, digest=last.digest,
                           layer_digest=last.layer_digest, operation=last.operation)
    if path is None:
        pinned = replace(source, ref=OCIRef(digest=last.digest))
        path = pull(pinned, cache_dir=cache_dir, read_secret=read_secret).path
    return SourceTree(last.revision, unpacked_root(path, last.operation))
