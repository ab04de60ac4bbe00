"""`gitward reconcile`: reconcile objects now, through a running `gitward run` when one serves
the store (engine/cli/requests.py), else in this process."""

from __future__ import annotations

import os
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import click

from engine.cli.repo import load_one, repo_option
from engine.cli.kinds import (
    IMAGE_POLICY,
    IMAGE_UPDATE,
    KUSTOMIZATION,
    SOURCE_GIT,
    SOURCE_OCI,
    Kind,
    find,
    parse_kind,
)
from engine.cli.kustomizations import reconcile_kustomization_command
from engine.cli.requests import ask, serving_daemons
from engine.cli.gitaccess import TOKEN_ENV, ssh_command_for, ssh_key_option, workdir_option
from engine.cli.secrets import cluster_secrets
from engine.cli.sources import reconcile_oci_source_command, reconcile_source_command
from engine.cli.state import holder_name, open_for_reading, open_for_writing
from engine.cli.commits import echo_outcomes
from engine.cli.updates import echo_unknown
from engine.clock import utcnow
from engine.errors import GitwardError, StoreError, UserError
from engine.evaluate.order import dependency_order
from engine.model import (
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    ObjectKey,
    Rule,
    RuleSet,
    ScanStatus,
)
from engine.observe.cluster import connect
from engine.observe.kubeenv import cluster_configured
from engine.observe.transport import SecretReader
from engine.reconcile.images import (
    PolicyOutcome,
    decide_policy,
    is_suspended,
    reconcile_repository,
)
from engine.reconcile.live import secret_reader
from engine.reconcile.repo import read_marked_tree
from engine.reconcile.imagefacts import RegistryAccess
from engine.reconcile.commits import apply_commits, run_summary
from engine.reconcile.updates import for_automation, plan_checkout, unknown_of
from engine.rules.duration import DurationError, parse_duration
from engine.store import queries
from engine.store.db import Store
from engine.store.reconciles import record_reconcile


class ReconcileFailed(GitwardError):
    """The object was reconciled and the outcome is a failure (exit 1)."""


@click.command()
@click.argument("words", nargs=-1, required=True)
@repo_option
@click.option("-n", "--namespace", default="flux-system", show_default=True)
@ssh_key_option
@workdir_option
@click.option("--with-source", is_flag=True,
              help="kustomization: fetch its source first (else its last recorded revision).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
              help="The cluster's kubeconfig (else KUBECONFIG, ~/.kube/config, in-cluster): "
                   "kustomizations apply there; image repositories and OCI sources read their "
                   "secretRef there.")
@click.option("--context", "kube_context", help="The kubeconfig context.")
@click.option("--all", "every", is_flag=True,
              help="kustomization: every Kustomization, each after the ones it dependsOn.")
@click.option("--direct", is_flag=True,
              help="Reconcile in this process even when a `gitward run` serves the store.")
@click.option("--timeout", default="5m", show_default=True,
              help="How long to wait for a running `gitward run` to answer.")
@click.pass_context
def reconcile(ctx: click.Context, words: tuple[str, ...], repo: Path, namespace: str,
              ssh_key: Path | None, workdir: Path, with_source: bool, kubeconfig: Path | None,
              kube_context: str | None, every: bool, direct: bool, timeout: str) -> int:
    """Reconcile an object now: `source git NAME` fetches its revision; `source oci NAME` pulls
    its artifact (verified, unpacked); `kustomization NAME`
    renders its path at the source's revision and applies it to the cluster (prune, health),
    after the Kustomizations it dependsOn are Ready (`--all`: every one, dependencies first);
    `image repository NAME` scans its registry and re-decides its policies; `image policy NAME`
    re-decides from the recorded tags; `image update NAME` commits and pushes the automation's
    updates.

    When a `gitward run` serves the store (here or on another machine sharing it), the request
    goes to it and this command waits for its answer, as `flux reconcile` waits for its
    controller; `--direct` reconciles here instead. A daemon that stops before answering
    (killed: its lease runs out within a minute) ends the wait with exit 1 and the request
    queued; nothing is reconciled here unasked. Image policies are always re-decided here.

    \b
    Examples:
      gitward reconcile source git flux-system --ssh-key ~/.ssh/homelab-ro
      gitward reconcile source oci flux-manifests
      gitward reconcile kustomization flux-system --with-source
      gitward reconcile kustomization --all --with-source
      gitward reconcile image repository podinfo/podinfo
      gitward reconcile image policy ledger/ledger
      gitward reconcile image update podinfo/podinfo --ssh-key ~/.ssh/homelab-rw
    """
    kind, names = parse_kind(words)
    if every and kind is not KUSTOMIZATION:
        raise UserError("--all works with `gitward reconcile kustomization` only")
    if every and names:
        raise UserError("name Kustomizations or pass --all, not both")
    wait = _timeout(timeout)
    daemons = _daemons(ctx) if not direct and kind is not IMAGE_POLICY else []
    if daemons:
        with open_for_writing(ctx) as store:
            keys = _requested(store, kind, names, repo, namespace, every, with_source)
            if not ask(store, keys, daemons, wait):
                raise ReconcileFailed("reconciliation failed")
        return 0
    if kind is SOURCE_GIT:
        return reconcile_source_command(ctx, names, repo=repo, namespace=namespace,
                                        ssh_key=ssh_key, workdir=workdir, kubeconfig=kubeconfig,
                                        context=kube_context)
    if kind is SOURCE_OCI:
        return reconcile_oci_source_command(ctx, names, repo=repo, namespace=namespace,
                                            workdir=workdir, kubeconfig=kubeconfig,
                                            context=kube_context)
    if kind is KUSTOMIZATION:
        return reconcile_kustomization_command(
            ctx, names, repo=repo, namespace=namespace, ssh_key=ssh_key, workdir=workdir,
            with_source=with_source, kubeconfig=kubeconfig, context=kube_context, every=every)
    rules = load_one(repo).rules
    if kind is IMAGE_UPDATE:
        return _automations(ctx, names, rules, repo, namespace, ssh_key, workdir,
                            kubeconfig, kube_context)
    deployed = read_marked_tree(repo, rules).deployed
    configured = cluster_configured(kubeconfig, kube_context)
    with ExitStack() as stack:
        cluster = stack.enter_context(connect(kubeconfig, kube_context)) if configured else None
        read_secret = secret_reader(cluster) if cluster else None
        failed = _images(ctx, kind, names, rules, namespace, deployed, read_secret)
    if failed:
        raise ReconcileFailed("reconciliation failed")
    return 0


def _daemons(ctx: click.Context) -> list[str]:
    """The `gitward run` processes serving the store (none when it does not exist yet, or
    predates leases: a daemon would have upgraded it)."""
    store = open_for_reading(ctx)
    if store is None:
        return []
    with store:
        try:
            return serving_daemons(store)
        except StoreError:
            return []


def _timeout(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except DurationError as err:
        raise UserError(f"--timeout: {err}") from err


def _requested(store: Store, kind: Kind, names: tuple[str, ...], repo: Path, namespace: str,
               every: bool, with_source: bool) -> list[ObjectKey]:
    """The objects to ask the daemon for, in order (sources first with `--with-source`);
    a suspended one is refused, as the daemon would leave it alone."""
    rules = load_one(repo).rules
    if every:
        targets: list[Rule] = list(dependency_order(rules.kustomizations))
    elif names:
        targets = [find(kind, rules, name, namespace) for name in names]
    else:
        raise UserError(f"name the {kind.flux_kind} to reconcile")
    keys: list[ObjectKey] = []
    if with_source:
        for target in targets:
            if isinstance(target, Kustomization):
                ref = target.source_ref
                keys.append(ObjectKey(ref.kind.value, ref.namespace or target.key.namespace,
                                      ref.name))
    keys += [target.key for target in targets]
    for key in keys:
        rule = rules.get(key)
        if getattr(rule, "suspend", False) or queries.is_suspended(store, key.kind, key.ref):
            raise ReconcileFailed(f"{key.kind} {key.ref} is suspended: `gitward resume` it first")
    return list(dict.fromkeys(keys))


def _automations(ctx: click.Context, names: tuple[str, ...], rules: RuleSet, repo: Path,
                 namespace: str, ssh_key: Path | None, workdir: Path, kubeconfig: Path | None,
                 kube_context: str | None) -> int:
    """Decide the policies and push the commits the named automations take part in (signed and
    through a proxy as their Secrets, read from the cluster, say)."""
    automations = [find(IMAGE_UPDATE, rules, name, namespace) for name in names]
    now = utcnow()
    failed = False
    with ExitStack() as stack, open_for_writing(ctx) as store:
        read_secret = cluster_secrets(stack, [*automations, *rules.sources], kubeconfig, kube_context)
        planned = plan_checkout(read_marked_tree(repo, rules), rules, store, now, record=True,
                                access=RegistryAccess(read_secret=read_secret))
        for automation in automations:
            assert isinstance(automation, ImageUpdate)
            ref = automation.key.ref
            if automation.suspend or queries.is_suspended(store, automation.KIND, ref):
                click.echo(f"✗ ImageUpdateAutomation {ref} is suspended: resume it first",
                           err=True)
                failed = True
                continue
            click.echo(f"► updating images of ImageUpdateAutomation {ref}")
            outcomes = apply_commits(store, rules, for_automation(planned, ref), now,
                                     workdir=workdir, ssh_command=ssh_command_for(ssh_key),
                                     token=os.environ.get(TOKEN_ENV) or None,
                                     holder=holder_name(), read_secret=read_secret)
            unknown = unknown_of(planned, automation)
            echo_unknown(unknown)
            failed |= echo_outcomes(outcomes, len(unknown))
            ran = run_summary(outcomes, unknown)
            if ran.failed or not ran.waiting:  # a wait is no reconcile, as in `gitward run`
                record_reconcile(store, automation.key, outcome="failed" if ran.failed else "ok",
                                 revision=ran.revision, message=ran.message, at=now)
    if failed:
        raise ReconcileFailed("reconciliation failed")
    return 0


def _images(ctx: click.Context, kind: Kind, names: tuple[str, ...], rules: RuleSet,
            namespace: str, deployed: dict[str, str], read_secret: SecretReader | None) -> bool:
    failed = False
    with open_for_writing(ctx) as store:
        for name in names:
            target = find(kind, rules, name, namespace)
            if isinstance(target, (ImageRepository, ImagePolicy)) and is_suspended(store, target):
                click.echo(f"✗ {target.KIND} {target.key.ref} is suspended: resume it first",
                           err=True)
                failed = True
            elif isinstance(target, ImageRepository):
                failed |= _repository(store, rules, target, deployed, read_secret)
            elif isinstance(target, ImagePolicy):
                failed |= _report(decide_policy(store, rules, target, now=utcnow(),
                                                deployed=deployed.get(target.key.ref)))
    return failed


def _repository(store: Store, rules: RuleSet, repository: ImageRepository,
                deployed: dict[str, str], read_secret: SecretReader | None) -> bool:
    """The ImageRepository's reconcile, as `gitward run` does it (suspended policies left alone)."""
    click.echo(f"► scanning ImageRepository {repository.key.ref}")
    done = reconcile_repository(store, rules, repository, deployed=deployed, read_secret=read_secret)
    scan = done.scan
    if scan.status is ScanStatus.FAILED:
        click.echo(f"✗ scan failed: {scan.error}", err=True)
        return True
    click.echo(f"✔ scan #{scan.id}: {scan.tag_count} tags")
    for ref in done.suspended:
        click.echo(f"• ImagePolicy {ref} is suspended: not decided")
    failed = False
    for outcome in done.decisions:
        failed |= _report(outcome)
    return failed


def _report(outcome: PolicyOutcome) -> bool:
    d = outcome.decision
    if d.selected_tag is None:
        click.echo(f"✗ ImagePolicy {d.policy}: {d.error}", err=True)
        return True
    change = (f" (previously {d.previous_tag})" if d.previous_tag and d.previous_tag != d.selected_tag
              else "")
    click.echo(f"✔ ImagePolicy {d.policy} selected {d.selected_tag}{change}")
    return False
