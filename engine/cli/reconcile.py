"""`gitward reconcile`: observe and decide one object now (scan a registry, evaluate a policy)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click

from engine.cli.check import repo_option
from engine.cli.kinds import (
    IMAGE_POLICY,
    IMAGE_REPOSITORY,
    KUSTOMIZATION,
    SOURCE_GIT,
    Kind,
    find,
    parse_kind,
)
from engine.cli.kustomizations import reconcile_kustomization_command
from engine.cli.pending import NotBuiltError
from engine.cli.sources import reconcile_source_command, ssh_key_option, workdir_option
from engine.cli.state import open_for_writing
from engine.errors import GitwardError, Problems, UserError
from engine.evaluate.plan import deployed_tags
from engine.model import ImagePolicy, ImageRepository, RuleSet, ScanStatus
from engine.observe.cluster import (
    ClusterClient,
    cluster_configured,
    connect,
    read_object,
)
from engine.reconcile.images import (
    PolicyOutcome,
    SecretReader,
    decide_policy,
    policies_of,
    scan_repository,
    utcnow,
)
from engine.reconcile.repo import locate_all, read_marked_files
from engine.rules.load import load_repo
from engine.store.db import Store


class ReconcileFailed(GitwardError):
    """The object was reconciled and the outcome is a failure (exit 1)."""


@click.command()
@click.argument("words", nargs=-1, required=True)
@repo_option
@click.option("-n", "--namespace", default="flux-system", show_default=True)
@ssh_key_option
@workdir_option
@click.option("--with-source", is_flag=True,
              help="kustomization: fetch its GitRepository first (else its last recorded revision).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
              help="The cluster's kubeconfig (else KUBECONFIG, ~/.kube/config, in-cluster): "
                   "kustomizations apply there; image repositories read their secretRef there.")
@click.option("--context", "kube_context", help="The kubeconfig context.")
@click.option("--all", "every", is_flag=True,
              help="kustomization: every Kustomization, each after the ones it dependsOn.")
@click.pass_context
def reconcile(ctx: click.Context, words: tuple[str, ...], repo: Path, namespace: str,
              ssh_key: Path | None, workdir: Path, with_source: bool, kubeconfig: Path | None,
              kube_context: str | None, every: bool) -> int:
    """Reconcile an object now: `source git NAME` fetches its revision; `kustomization NAME`
    renders its path at the source's revision and applies it to the cluster (prune, health),
    after the Kustomizations it dependsOn are Ready (`--all`: every one, dependencies first);
    `image repository NAME` scans its registry and re-decides its policies; `image policy NAME`
    re-decides from the recorded tags.

    \b
    Examples:
      gitward reconcile source git flux-system --ssh-key ~/.ssh/homelab-ro
      gitward reconcile kustomization flux-system --with-source
      gitward reconcile kustomization --all --with-source
      gitward reconcile image repository podinfo/podinfo
      gitward reconcile image policy ledger/ledger
    """
    kind, names = parse_kind(words)
    if every and kind is not KUSTOMIZATION:
        raise UserError("--all works with `gitward reconcile kustomization` only")
    if kind is SOURCE_GIT:
        return reconcile_source_command(ctx, names, repo=repo, namespace=namespace,
                                        ssh_key=ssh_key, workdir=workdir)
    if kind is KUSTOMIZATION:
        return reconcile_kustomization_command(
            ctx, names, repo=repo, namespace=namespace, ssh_key=ssh_key, workdir=workdir,
            with_source=with_source, kubeconfig=kubeconfig, context=kube_context, every=every)
    if kind not in (IMAGE_REPOSITORY, IMAGE_POLICY):
        raise NotBuiltError(f"`gitward reconcile {kind.cli_name}` is not built yet: use "
                            "`gitward apply` (every automation now) or `gitward run --once`")
    problems = Problems()
    rules = load_repo(repo, problems).rules
    problems.raise_if_errors()
    values, _ = locate_all(rules, read_marked_files(repo, rules.marker_dialects))
    deployed = deployed_tags(values)
    configured = cluster_configured(kubeconfig, kube_context)
    with ExitStack() as stack:
        cluster = stack.enter_context(connect(kubeconfig, kube_context)) if configured else None
        read_secret = _secret_reader(cluster) if cluster else None
        failed = _images(ctx, kind, names, rules, namespace, deployed, read_secret)
    if failed:
        raise ReconcileFailed("reconciliation failed")
    return 0


def _secret_reader(cluster: ClusterClient) -> SecretReader:
    def read(namespace: str, name: str) -> dict[str, object] | None:
        return read_object(cluster, "v1", "Secret", namespace, name)
    return read


def _images(ctx: click.Context, kind: Kind, names: tuple[str, ...], rules: RuleSet,
            namespace: str, deployed: dict[str, str], read_secret: SecretReader | None) -> bool:
    failed = False
    with open_for_writing(ctx) as store:
        for name in names:
            target = find(kind, rules, name, namespace)
            if isinstance(target, ImageRepository):
                failed |= _repository(store, rules, target, deployed, read_secret)
            elif isinstance(target, ImagePolicy):
                failed |= _report(_decide(store, rules, target, deployed))
    return failed


def _repository(store: Store, rules: RuleSet, repository: ImageRepository,
                deployed: dict[str, str], read_secret: SecretReader | None) -> bool:
    click.echo(f"► scanning ImageRepository {repository.key.ref}")
    scan = scan_repository(store, repository, read_secret=read_secret)
    if scan.status is ScanStatus.FAILED:
        click.echo(f"✗ scan failed: {scan.error}", err=True)
    else:
        click.echo(f"✔ scan #{scan.id}: {scan.tag_count} tags")
    failed = scan.status is ScanStatus.FAILED
    for policy in policies_of(rules, repository):
        failed |= _report(_decide(store, rules, policy, deployed))
    return failed


def _decide(store: Store, rules: RuleSet, policy: ImagePolicy,
            deployed: dict[str, str]) -> PolicyOutcome:
    """Decide with the tag git deploys now, so a scan that lost it is not trusted."""
    return decide_policy(store, rules, policy, now=utcnow(), deployed=deployed.get(policy.key.ref))


def _report(outcome: PolicyOutcome) -> bool:
    d = outcome.decision
    if d.selected_tag is None:
        click.echo(f"✗ ImagePolicy {d.policy}: {d.error}", err=True)
        return True
    change = (f" (previously {d.previous_tag})" if d.previous_tag and d.previous_tag != d.selected_tag
              else "")
    click.echo(f"✔ ImagePolicy {d.policy} selected {d.selected_tag}{change}")
    return False
