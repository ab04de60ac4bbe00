"""`gitward reconcile kustomization NAME [--with-source]`: sync one Kustomization now."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from engine.cli.kinds import KUSTOMIZATION, find
from engine.cli.sources import ssh_command_for
from engine.cli.state import open_for_writing
from engine.errors import GitwardError, Problems
from engine.model import Kustomization
from engine.observe.cluster import connect
from engine.reconcile.kustomizations import reconcile_kustomization
from engine.rules.load import load_repo


class SyncFailed(GitwardError):
    """A Kustomization was reconciled and its sync failed (exit 1)."""


def reconcile_kustomization_command(ctx: click.Context, names: tuple[str, ...], *, repo: Path,
                                    namespace: str, ssh_key: Path | None, workdir: Path,
                                    with_source: bool, kubeconfig: Path | None,
                                    context: str | None) -> int:
    problems = Problems()
    rules = load_repo(repo, problems).rules
    problems.raise_if_errors()
    targets = [find(KUSTOMIZATION, rules, name, namespace) for name in names]
    failed: list[str] = []
    with open_for_writing(ctx) as store, connect(kubeconfig, context) as client:
        for target in targets:
            assert isinstance(target, Kustomization)
            click.echo(f"► reconciling Kustomization {target.key.ref}")
            outcome = reconcile_kustomization(
                store, rules, target, client=client, now=datetime.now(UTC),
                with_source=with_source, cache_dir=workdir, ssh_command=ssh_command_for(ssh_key),
                token=os.environ.get("GITWARD_GIT_TOKEN"))
            if outcome.skipped:
                click.echo(f"• {outcome.skipped}")
                continue
            assert outcome.result is not None
            ok = outcome.result.ok
            click.echo(f"{'✔' if ok else '✗'} Kustomization {target.key.ref} at {outcome.revision}",
                       err=not ok)
            for line in outcome.result.summary().splitlines():
                click.echo(f"  {line}", err=not ok)
            if not ok:
                failed.append(target.key.ref)
    if failed:
        raise SyncFailed(f"sync failed for Kustomization {', '.join(failed)}")
    return 0
