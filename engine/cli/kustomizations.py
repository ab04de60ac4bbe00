"""`gitward reconcile kustomization NAME... | --all [--with-source]`: sync Kustomizations now,
dependencies first."""

from __future__ import annotations

import os
from pathlib import Path

import click

from engine.cli.kinds import KUSTOMIZATION, find
from engine.cli.gitaccess import ssh_command_for
from engine.cli.state import open_for_writing
from engine.cli.repo import load_one
from engine.errors import GitwardError, UserError
from engine.evaluate.discover import BOOTSTRAP_SOURCE
from engine.evaluate.order import dependency_order
from engine.model import Kustomization
from engine.observe.cluster import connect
from engine.reconcile.live import live_sources, secret_reader
from engine.reconcile.order import OrderedReconcile, Reconciled


class SyncFailed(GitwardError):
    """A Kustomization was reconciled and its sync failed (exit 1, or 2 for bad input)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def reconcile_kustomization_command(ctx: click.Context, names: tuple[str, ...], *, repo: Path,
                                    namespace: str, ssh_key: Path | None, workdir: Path,
                                    with_source: bool, kubeconfig: Path | None,
                                    context: str | None, every: bool = False) -> int:
    loaded = load_one(repo)
    rules = loaded.rules
    if every:
        targets: list[Kustomization] = list(rules.kustomizations)
    else:
        targets = []
        for name in names:
            target = find(KUSTOMIZATION, rules, name, namespace)
            assert isinstance(target, Kustomization)
            targets.append(target)
    if not targets:
        raise UserError("name a Kustomization or pass --all" if not every
                        else f"no Kustomization is defined in {repo}")
    order = dependency_order(rules.kustomizations, targets)
    failed: list[Reconciled] = []
    with open_for_writing(ctx) as store, connect(kubeconfig, context) as client:
        if BOOTSTRAP_SOURCE in loaded.inferred:  # the cluster knows it better than a guess
            rules = load_one(repo, hints=live_sources(client)).rules
        run = OrderedReconcile(store, rules, client, with_source=with_source, cache_dir=workdir,
                               ssh_command=ssh_command_for(ssh_key),
                               token=os.environ.get("GITWARD_GIT_TOKEN"),
                               read_secret=secret_reader(client))
        for target in order:
            click.echo(f"► reconciling Kustomization {target.key.ref}")
            outcome = run.reconcile(target)
            _report(outcome)
            if outcome.failed:
                failed.append(outcome)
    if failed:
        refs = ", ".join(o.kustomization.key.ref for o in failed)
        raise SyncFailed(f"sync failed for Kustomization {refs}",
                         max((o.exit_code for o in failed), default=1) or 1)
    return 0


def _report(outcome: Reconciled) -> None:
    ref = outcome.kustomization.key.ref
    if outcome.skipped:
        click.echo(f"• {outcome.skipped}")
    elif outcome.blocked:
        click.echo(f"✗ Kustomization {ref} skipped: {outcome.blocked}", err=True)
    elif outcome.error:
        click.echo(f"✗ Kustomization {ref}: {outcome.error}", err=True)
    elif outcome.result is not None:
        ok = outcome.result.ok
        click.echo(f"{'✔' if ok else '✗'} Kustomization {ref} at {outcome.revision}", err=not ok)
        for line in outcome.result.summary().splitlines():
            click.echo(f"  {line}", err=not ok)
