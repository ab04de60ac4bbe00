"""`gitward diff kustomization`: the local checkout against the live cluster, like `flux diff`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from engine.cli.repo import load_one, repo_option
from engine.cli.kinds import KUSTOMIZATION, find
from engine.cli.state import open_for_reading
from engine.errors import GitwardError
from engine.model import Kustomization
from engine.observe.cluster import connect
from engine.reconcile.diff import DiffResult, diff_kustomization


class DiffFailed(GitwardError):
    """The diff could not be made (cluster, build, store): `flux diff` exits 2 on any error."""

    exit_code = 2


@click.group()
def diff() -> None:
    """Compare the local checkout with the live cluster (server-side dry-run, never a write)."""


@diff.command("kustomization")
@click.argument("name")
@repo_option
@click.option("-n", "--namespace", default="flux-system", show_default=True,
              help="The Kustomization's namespace (or write NAME as namespace/name).")
@click.option("--path", "local", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A local directory to render instead of the Kustomization's spec.path.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
              help="The cluster's kubeconfig (else KUBECONFIG, ~/.kube/config, in-cluster).")
@click.option("--context", "kube_context", help="The kubeconfig context.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Flux-style lines, or one JSON object.")
@click.pass_context
def diff_kustomization_command(ctx: click.Context, name: str, repo: Path, namespace: str,
                               local: Path | None, kubeconfig: Path | None,
                               kube_context: str | None, fmt: str) -> int:
    """Show what `gitward reconcile kustomization NAME` would change if it applied the local
    files: objects it would create (`► Kind/ns/name created`), objects that drifted from the
    files, with each differing field (`► Kind/ns/name drifted`), and objects of the inventory it
    would prune (`► Kind/ns/name deleted`). Each object is dry-run on the server (server-side
    apply, dryRun=All), so server defaults are not drift and nothing is written. Secret values
    are masked. Exit 0 without differences, 1 with some, 2 on an error.

    \b
    Examples:
      gitward diff kustomization flux-system --repo .
      gitward diff kustomization apps --path ./clusters/staging/apps --context staging
    """
    try:
        result = _diff(ctx, name, repo, namespace, local, kubeconfig, kube_context)
    except GitwardError as err:
        if err.exit_code == DiffFailed.exit_code:
            raise
        raise DiffFailed(str(err)) from err
    for warning in result.warnings:
        click.echo(warning.render(excerpt=False), err=True)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        for line in result.lines():
            click.echo(line)
    for error in result.errors:
        click.echo(f"✗ {error}", err=True)
    ref = result.kustomization.key.ref
    if result.errors:
        click.echo(f"✗ Kustomization {ref}: {len(result.errors)} object(s) could not be compared",
                   err=True)
    elif result.changes:
        click.echo(f"► Kustomization {ref}: {len(result.changes)} change(s)", err=True)
    else:
        click.echo(f"✔ Kustomization {ref}: no changes", err=True)
    return result.exit_code


def _diff(ctx: click.Context, name: str, repo: Path, namespace: str, local: Path | None,
          kubeconfig: Path | None, kube_context: str | None) -> DiffResult:
    rules = load_one(repo).rules
    target = find(KUSTOMIZATION, rules, name, namespace)
    assert isinstance(target, Kustomization)
    store = open_for_reading(ctx)
    try:
        with connect(kubeconfig, kube_context) as client:
            return diff_kustomization(store, rules, target, root=repo, client=client, path=local)
    finally:
        if store is not None:
            store.close()
