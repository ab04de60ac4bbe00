"""`gitward build kustomization`: the objects a Kustomization renders, like `flux build`, offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine.cli.check import repo_option
from engine.cli.kinds import KUSTOMIZATION, find
from engine.errors import Problems
from engine.evaluate.kubeyaml import dump_all
from engine.model import GitSource, Kustomization, ObjectKey
from engine.reconcile.build import build_kustomization
from engine.rules.load import load_repo


@click.group()
def build() -> None:
    """Render objects from the local checkout, as Flux would build them (offline)."""


@build.command("kustomization")
@click.argument("name")
@repo_option
@click.option("-n", "--namespace", default="flux-system", show_default=True,
              help="The Kustomization's namespace (or write NAME as namespace/name).")
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True, help="YAML documents, or a JSON list.")
def build_kustomization_command(name: str, repo: Path, namespace: str, fmt: str) -> int:
    """Print every object the Kustomization NAME renders from its path in the checkout.

    Plain manifests are rendered directly; a path (or sub-directory) with a kustomization file,
    or a Kustomization with targetNamespace, namePrefix/nameSuffix, patches, images or
    components, runs the real kustomize (`kustomize build`, else `kubectl kustomize`). Then
    postBuild.substitute, owner labels and commonMetadata, as kustomize-controller applies
    them. postBuild.substituteFrom needs the cluster and is skipped with a warning.

    \b
    Examples:
      gitward build kustomization flux-system --repo examples/homelab
      gitward build kustomization flux-system --repo . -o json | jq length
    """
    problems = Problems()
    rules = load_repo(repo, problems).rules
    problems.raise_if_errors()
    target = find(KUSTOMIZATION, rules, name, namespace)
    assert isinstance(target, Kustomization)
    ref = target.source_ref
    source = rules.get(ObjectKey(GitSource.KIND, ref.namespace or target.namespace, ref.name))
    result = build_kustomization(repo, target, source=source if isinstance(source, GitSource) else None)
    for warning in result.warnings:
        click.echo(warning.render(excerpt=False), err=True)
    bodies = [m.body for m in result.manifests]
    if fmt == "json":
        sys.stdout.write(json.dumps(bodies, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(dump_all(bodies))
    return 0
