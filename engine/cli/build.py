"""`gitward build kustomization`: the objects a Kustomization renders, like `flux build`, offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine.cli.kinds import KUSTOMIZATION
from engine.cli.repo import find_in, load, repo_option
from engine.cli.gitaccess import workdir_option
from engine.cli.state import open_for_reading
from engine.errors import GitwardError, UserError
from engine.evaluate.kubeyaml import dump_all
from engine.model import GitSource, Kustomization, OCISource
from engine.observe.oci import cached_artifact, unpacked_root
from engine.reconcile.build import build_kustomization
from engine.rules.check import source_key
from engine.rules.load import display_path
from engine.store.artifacts import latest_oci_revision


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
@workdir_option
@click.pass_context
def build_kustomization_command(ctx: click.Context, name: str, repo: Path, namespace: str, fmt: str,
                                workdir: Path) -> int:
    """Print every object the Kustomization NAME renders from its path in the checkout.

    A Kustomization whose source is an OCIRepository renders from the artifact last pulled
    (`gitward reconcile source oci NAME` pulls it into --workdir).

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
    cluster, target = find_in(load(repo), KUSTOMIZATION, name, namespace)
    assert isinstance(target, Kustomization)
    key = source_key(target)
    found = cluster.rules.get(key)
    source = found if isinstance(found, (GitSource, OCISource)) else None
    if isinstance(source, OCISource):
        root = _artifact_root(ctx, source, workdir)
    elif source is None or key not in cluster.held:
        what = "is not reconciled by gitward" if source is None else "is not this checkout"
        raise GitwardError(f"Kustomization {target.key.ref} builds from {key.kind} {key.ref}, which "
                           f"{what}: `gitward build` renders from the checkout {display_path(repo)}")
    else:
        root = repo
    result = build_kustomization(root, target, source=source)
    for warning in result.warnings:
        click.echo(warning.render(excerpt=False), err=True)
    bodies = [m.body for m in result.manifests]
    if fmt == "json":
        sys.stdout.write(json.dumps(bodies, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(dump_all(bodies))
    return 0


def _artifact_root(ctx: click.Context, source: OCISource, workdir: Path) -> Path:
    """The unpacked artifact the OCIRepository last pulled, from the cache (no network)."""
    store = open_for_reading(ctx)
    last = None
    if store is not None:
        with store:
            last = latest_oci_revision(store, source.key.ref)
    path = None if last is None else cached_artifact(
        source, cache_dir=workdir, digest=last.digest, layer_digest=last.layer_digest,
        operation=last.operation)
    if last is None or path is None:
        raise UserError(f"OCIRepository {source.key.ref}: the Kustomization builds from its "
                        "artifact, which has not been pulled here; pull it with `gitward "
                        f"reconcile source oci {source.key.ref}` (same --state and --workdir)")
    return unpacked_root(path, last.operation)
