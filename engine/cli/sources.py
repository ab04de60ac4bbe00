"""`gitward reconcile source git|oci NAME`: fetch a GitRepository (pull an OCIRepository's
artifact) now and record its revision.

`reconcile_source_command` and `reconcile_oci_source_command` are called by `gitward reconcile`
(engine/cli/reconcile.py), which carries the options below. An HTTPS token may be given in
GITWARD_GIT_TOKEN (never stored); registry credentials come from the OCIRepository's secretRef
(with a cluster configured) or the docker config.json.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import cast

import click

from engine.cli.gitaccess import TOKEN_ENV, ssh_command_for
from engine.cli.kinds import SOURCE_GIT, SOURCE_OCI, Kind, find
from engine.cli.state import open_for_writing
from engine.cli.repo import load_one
from engine.cli.secrets import cluster_secrets
from engine.model import GitSource, OCISource, Rule
from engine.reconcile.sources import reconcile_oci_source, reconcile_source
from engine.store import queries
from engine.store.db import Store


def reconcile_source_command(ctx: click.Context, names: tuple[str, ...], *, repo: Path,
                             namespace: str, ssh_key: Path | None, workdir: Path,
                             kubeconfig: Path | None = None, context: str | None = None) -> int:
    """Fetch each named GitRepository and print its revision; 1 when any fetch failed."""
    sources = [cast(GitSource, s) for s in _named(SOURCE_GIT, names, repo, namespace)]
    ssh_command = ssh_command_for(ssh_key)
    token = os.environ.get(TOKEN_ENV) or None
    failed = False
    with ExitStack() as stack, open_for_writing(ctx) as store:
        read_secret = cluster_secrets(stack, sources, kubeconfig, context)
        for source in sources:
            if _suspended(store, source):
                failed = True
                continue
            click.echo(f"► fetching GitRepository {source.key.ref} ({source.ref.describe()})")
            outcome = reconcile_source(store, source, cache_dir=workdir, ssh_command=ssh_command,
                                       token=token, read_secret=read_secret)
            if outcome.checkout is None:
                click.echo(f"✗ {outcome.error}", err=True)
                failed = True
            else:
                click.echo(f"✔ fetched revision {outcome.checkout.revision}")
    return 1 if failed else 0


def reconcile_oci_source_command(ctx: click.Context, names: tuple[str, ...], *, repo: Path,
                                 namespace: str, workdir: Path, kubeconfig: Path | None,
                                 context: str | None) -> int:
    """Pull each named OCIRepository's artifact and print its revision; 1 when any pull failed."""
    sources = [cast(OCISource, s) for s in _named(SOURCE_OCI, names, repo, namespace)]
    failed = False
    with ExitStack() as stack, open_for_writing(ctx) as store:
        read_secret = cluster_secrets(stack, sources, kubeconfig, context)
        for source in sources:
            if _suspended(store, source):
                failed = True
                continue
            click.echo(f"► pulling OCIRepository {source.key.ref} ({source.ref.describe()})")
            outcome = reconcile_oci_source(store, source, cache_dir=workdir, read_secret=read_secret)
            if outcome.artifact is None:
                click.echo(f"✗ {outcome.error}", err=True)
                failed = True
            else:
                click.echo(f"✔ pulled revision {outcome.artifact.revision}")
    return 1 if failed else 0


def _named(kind: Kind, names: tuple[str, ...], repo: Path, namespace: str) -> list[Rule]:
    """The sources the user named, from the rules of `repo`."""
    rules = load_one(repo).rules
    return [find(kind, rules, name, namespace) for name in names]


def _suspended(store: Store, source: GitSource | OCISource) -> bool:
    """Whether the source is suspended (its rule, or `gitward suspend`), said on stderr."""
    ref = source.key.ref
    if source.suspend or queries.is_suspended(store, source.KIND, ref):
        click.echo(f"✗ {source.KIND} {ref} is suspended: resume it first", err=True)
        return True
    return False
