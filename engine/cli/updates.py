"""`gitward plan` and `gitward images check`: the marker updates a checkout needs.

Carrying them out (`gitward apply`, `gitward images update`) is engine/cli/commits.py's: a plan
imports no git library.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

import click

from engine.cli.repo import load, repo_option
from engine.cli.output import dump
from engine.cli.secrets import cluster_secrets
from engine.cli.state import open_for_reading, open_for_writing
from engine.clock import utcnow
from engine.model import Plan, RuleSet, UnknownPolicy
from engine.observe.transport import SecretReader
from engine.reconcile.commitplan import CommitApply, commit_applies
from engine.reconcile.imagefacts import RegistryAccess
from engine.reconcile.images import scan_repository
from engine.reconcile.updates import RepoPlan, plan_checkout
from engine.reconcile.repo import LoadedCluster, read_marked_tree
from engine.store.db import Store

offline_option = click.option(
    "--offline", is_flag=True,
    help="Use the recorded tags only; do not scan the registries first.")


def clusters_for(repo: Path, *, writing: bool) -> list[LoadedCluster]:
    """The clusters whose automations to plan: every one that has any (one when `writing`:
    a commit is made for one cluster's automations at a time)."""
    loaded = load(repo)
    acting = [c for c in loaded.clusters if c.rules.image_updates] or list(loaded.clusters[:1])
    if writing and len(acting) > 1:
        return [loaded.one()]
    return acting


def scan_used(store: Store, rules: RuleSet, read_secret: SecretReader | None) -> None:
    """Scan every repository a policy uses, so the plan sees today's tags (with the Secrets
    they name, read through `read_secret`)."""
    used = {p.repository_key for p in rules.image_policies}
    for repository in rules.image_repositories:
        if repository.key not in used or repository.suspend:
            continue
        scan = scan_repository(store, repository, read_secret=read_secret)
        if scan.error:
            click.echo(f"✗ scan of ImageRepository {repository.key.ref} failed: {scan.error}",
                       err=True)


def plan_clusters(ctx: click.Context, repo: Path, clusters: list[LoadedCluster], offline: bool,
                  *, record: bool) -> list[tuple[str, RepoPlan]]:
    """Each cluster's plan (named by its directory when the repository has several). Unless
    `offline`, the registries are scanned and asked about the images a change involves, with
    the Secrets the image repositories name (from the cluster `KUBECONFIG` configures)."""
    now = utcnow()
    with ExitStack() as stack:
        store = (open_for_reading(ctx) if offline and not record else open_for_writing(ctx))
        if store is not None:
            stack.callback(store.close)
        plans = []
        for cluster in clusters:
            access = None
            if store is not None and not offline:
                read_secret = cluster_secrets(stack, cluster.rules.image_repositories)
                scan_used(store, cluster.rules, read_secret)
                access = RegistryAccess(read_secret=read_secret)
            name = cluster.name if len(clusters) > 1 else ""
            plans.append((name, plan_checkout(read_marked_tree(repo, cluster.rules), cluster.rules,
                                              store, now, record=record, access=access)))
        return plans


def echo_unknown(unknown: Iterable[UnknownPolicy]) -> None:
    """`unknown: file:line  NS/NAME  reason`, on stderr, for each policy gitward does not know."""
    for u in unknown:
        click.echo(f"unknown: {u.path}:{u.line}  {u.policy}  {u.reason}", err=True)


def report_aside(plan: Plan) -> None:
    echo_unknown(plan.unknown)
    for gate in plan.gates:
        state = "applied" if gate.applied else "held"
        click.echo(f"{state}: {gate.path}:{gate.line}  {gate.policy}  {gate.gate.value}: "
                   f"{gate.reason}", err=True)
    for note in plan.skipped:
        click.echo(f"skipped: {note}", err=True)
    for warning in plan.warnings:
        click.echo(warning.render(excerpt=False), err=True)
    for error in plan.errors:
        click.echo(f"✗ {error.problem.render()}", err=True)


output_option = click.option(
    "-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
    show_default=True, help="json: the plan's actions, gates, unknown policies, warnings and "
    "errors, for scripts.")


@click.command("check")
@repo_option
@offline_option
@click.option("--exit-code", is_flag=True, help="Exit 1 when any update would be made.")
@output_option
@click.pass_context
def check_updates(ctx: click.Context, repo: Path, offline: bool, exit_code: bool,
                  fmt: str) -> int:
    """List the marker updates that would be made: `file:line  policy  old -> new`.

    Exits 1 when a policy a marker needs is unknown (its repository never scanned, its latest
    scan failed, its decision refused): its markers are not known to be current.

    \b
    Example:
      gitward --state state.db.example images check --repo examples/homelab --offline
    """
    plans = plan_clusters(ctx, repo, clusters_for(repo, writing=False), offline, record=False)
    changed = any(planned.plan.actions for _, planned in plans)
    unknown = sum(len(planned.plan.unknown) for _, planned in plans)
    failed = any(planned.plan.errors for _, planned in plans) or unknown > 0
    if fmt == "json":
        _dump_plans(plans)
        return 1 if failed or (exit_code and changed) else 0
    for _, planned in plans:
        found = [f for action in planned.plan.actions for f in action.files]
        for f in found:
            click.echo(f"{f.path}:{f.line}  {f.policy}  {f.old} -> {f.new}")
        report_aside(planned.plan)
    if not changed:
        click.echo(f"no updates; {unknown_note(unknown)}" if unknown else "no updates", err=True)
    return 1 if failed or (exit_code and changed) else 0


def unknown_note(count: int) -> str:
    """Why nothing to do is not "current": how many marked policies gitward does not know."""
    if count == 1:
        return "1 marked policy is unknown: its markers are not known to be current"
    return f"{count} marked policies are unknown: their markers are not known to be current"


@click.command("plan")
@repo_option
@offline_option
@output_option
@click.pass_context
def plan(ctx: click.Context, repo: Path, offline: bool, fmt: str) -> int:
    """Show the actions gitward would take, with a unified diff of every file it would change.

    Nothing is written: decisions are made in memory from the recorded tags. Exits 1 when an
    automation's commit cannot be planned, or a policy a marker needs is unknown.

    \b
    Example:
      gitward --state state.db.example plan --repo examples/homelab --offline
    """
    clusters = clusters_for(repo, writing=False)
    plans = plan_clusters(ctx, repo, clusters, offline, record=False)
    with ExitStack() as stack:
        store = open_for_reading(ctx)
        if store is not None:
            stack.callback(store.close)
        applies = [commit_applies(repo, cluster, planned, store)
                   for cluster, (_, planned) in zip(clusters, plans)]
    failed = any(planned.plan.errors or planned.plan.unknown for _, planned in plans)
    if fmt == "json":
        _dump_plans(plans, applies)
        return 1 if failed else 0
    for (name, planned), applied in zip(plans, applies):
        if name:
            click.echo(f"cluster {name}:")
        _print_plan(planned, applied)
    return 1 if failed else 0


def _dump_plans(plans: list[tuple[str, RepoPlan]], applies: list[tuple[CommitApply, ...]] | None = None) -> None:
    """One cluster's plan as an object; several as a list, each naming its cluster (`applies`:
    each cluster's apply plans, which `images check` leaves out)."""
    applies = applies or [() for _ in plans]
    dump([plan_json(name, planned, applied) for (name, planned), applied in zip(plans, applies)]
         if len(plans) > 1 else plan_json("", plans[0][1], applies[0]), "json")


def plan_json(cluster: str, planned: RepoPlan, applies: tuple[CommitApply, ...] = ()) -> dict[str, object]:
    """The commit actions, each followed (under `apply`) by the apply plans its commit leads to."""
    result = planned.plan
    return {**({"cluster": cluster} if cluster else {}),
            "actions": [a.to_json() for a in result.actions],
            "apply": [a.to_json() for a in applies],
            "decisions": [d.to_json() for d in planned.decisions],
            "gates": [g.to_json() for g in result.gates],
            "unknown": [u.to_json() for u in result.unknown],
            "skipped": list(result.skipped),
            "warnings": [w.to_json() for w in result.warnings],
            "errors": [{"automation": e.automation, **e.problem.to_json()} for e in result.errors]}


def _print_plan(planned: RepoPlan, applies: tuple[CommitApply, ...] = ()) -> None:
    result = planned.plan
    if not result.actions and not result.errors:
        click.echo(f"no actions; {unknown_note(len(result.unknown))}" if result.unknown
                   else "no actions: every marked value is current")
    elif result.unknown:
        click.echo(unknown_note(len(result.unknown)))
    for action in result.actions:
        files = sorted({f.path for f in action.files})
        click.echo(f"commit to {action.source.ref} branch {action.push_branch} "
                   f"({len(action.files)} change{'s' * (len(action.files) != 1)} in "
                   f"{len(files)} file{'s' * (len(files) != 1)}), author {action.author}")
        click.echo("".join(f"    {line}\n" for line in action.message.splitlines()), nl=False)
        texts = planned.texts[action.target]
        for path in files:
            click.echo("".join(difflib.unified_diff(
                planned.files[path].splitlines(keepends=True),
                texts[path].splitlines(keepends=True),
                fromfile=f"a/{path}", tofile=f"b/{path}")), nl=False)
        for applied in applies:
            if applied.commit == action.target:
                _print_applies(applied)
    report_aside(result)


def _print_applies(applied: CommitApply) -> None:
    """`then apply Kustomization ns/name:` and each object it would write or prune."""
    for apply_plan in applied.plans:
        changes = apply_plan.changes
        click.echo(f"then apply Kustomization {apply_plan.kustomization} (against the recorded inventory): "
                   f"{len(changes)} change{'s' * (len(changes) != 1)}, "
                   f"{len(apply_plan.actions) - len(changes)} unchanged")
        for change in changes:
            click.echo(f"    {change}")
    for error in applied.errors:
        click.echo(f"then apply: {error}")
