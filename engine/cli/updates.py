"""`gitward plan`, `gitward images check` and `gitward images update`: marker updates in a checkout."""

from __future__ import annotations

import difflib
import os
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import click

from engine.act.checkout import commit_files, push_branch
from engine.cli.repo import load, repo_option
from engine.cli.output import dump
from engine.cli.sources import TOKEN_ENV, cluster_secrets, ssh_command_for, ssh_key_option, workdir_option
from engine.cli.state import holder_name, open_for_reading, open_for_writing
from engine.model import Plan, RuleSet
from engine.observe.transport import SecretReader
from engine.reconcile.images import scan_repository
from engine.reconcile.pushsettings import not_done_locally
from engine.reconcile.updates import (
    Applied,
    RepoPlan,
    apply_commits,
    plan_checkout,
    write_changes,
)
from engine.reconcile.repo import LoadedCluster
from engine.store.db import Store

offline_option = click.option(
    "--offline", is_flag=True,
    help="Use the recorded tags only; do not scan the registries first.")


def _clusters(repo: Path, *, writing: bool) -> list[LoadedCluster]:
    """The clusters whose automations to plan: every one that has any (one when `writing`:
    a commit is made for one cluster's automations at a time)."""
    loaded = load(repo)
    acting = [c for c in loaded.clusters if c.rules.image_updates] or list(loaded.clusters[:1])
    if writing and len(acting) > 1:
        return [loaded.one()]
    return acting


def _scan(store: Store, rules: RuleSet, read_secret: SecretReader | None = None) -> None:
    """Scan every repository a policy uses, so the plan sees today's tags (with the Secrets
    they name, from the cluster `KUBECONFIG` configures when `read_secret` is not given)."""
    used = {p.repository_key for p in rules.image_policies}
    with ExitStack() as stack:
        if read_secret is None:
            read_secret = cluster_secrets(stack, [r for r in rules.image_repositories if r.key in used])
        for repository in rules.image_repositories:
            if repository.key not in used or repository.suspend:
                continue
            scan = scan_repository(store, repository, read_secret=read_secret)
            if scan.error:
                click.echo(f"✗ scan of ImageRepository {repository.key.ref} failed: {scan.error}",
                           err=True)


def _plan(ctx: click.Context, repo: Path, offline: bool, *, record: bool) -> list[tuple[str, RepoPlan]]:
    """Each cluster's plan (named by its directory when the repository has several)."""
    clusters = _clusters(repo, writing=record)
    now = datetime.now(UTC)
    if offline and not record:
        store = open_for_reading(ctx)
    else:
        store = open_for_writing(ctx)
    try:
        plans = []
        for cluster in clusters:
            if store is not None and not offline:
                _scan(store, cluster.rules)
            name = cluster.name if len(clusters) > 1 else ""
            plans.append((name, plan_checkout(repo, cluster.rules, store, now, record=record)))
        return plans
    finally:
        if store is not None:
            store.close()


def _report_aside(plan: Plan) -> None:
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


@click.command("check")
@repo_option
@offline_option
@click.option("--exit-code", is_flag=True, help="Exit 1 when any update would be made.")
@click.pass_context
def check_updates(ctx: click.Context, repo: Path, offline: bool, exit_code: bool) -> int:
    """List the marker updates that would be made: `file:line  policy  old -> new`.

    \b
    Example:
      gitward --state state.db.example images check --repo examples/homelab --offline
    """
    changes = []
    plans = _plan(ctx, repo, offline, record=False)
    for _, planned in plans:
        found = [f for action in planned.plan.actions for f in action.files]
        for f in found:
            click.echo(f"{f.path}:{f.line}  {f.policy}  {f.old} -> {f.new}")
        _report_aside(planned.plan)
        changes += found
    if not changes:
        click.echo("no updates", err=True)
    failed = any(planned.plan.errors for _, planned in plans)
    return 1 if failed or (exit_code and changes) else 0


@click.command("update")
@repo_option
@offline_option
@click.option("--push", "push", is_flag=True, help="Push the commit to the push branch.")
@click.option("--no-commit", is_flag=True, help="Only rewrite the files in the working tree.")
@click.pass_context
def update_images(ctx: click.Context, repo: Path, offline: bool, push: bool, no_commit: bool) -> int:
    """Rewrite marked values in the checkout, commit them, and optionally push.

    Decisions are recorded in the store; each commit carries `Gitward-Decision: <id>` trailers.

    \b
    Examples:
      gitward images update --repo . --push
      gitward images update --repo . --offline --no-commit
    """
    if push and no_commit:
        raise click.UsageError("--push needs a commit: drop --no-commit")
    [(_, planned)] = _plan(ctx, repo, offline, record=True)
    [cluster] = _clusters(repo, writing=True)
    plan = planned.plan
    _report_aside(plan)
    if not plan.actions:
        click.echo("no updates")
        return 1 if plan.errors else 0
    for action in plan.actions:
        written = write_changes(repo, planned.texts[action.target])
        for f in action.files:
            click.echo(f"✔ {f.path}:{f.line}  {f.old} -> {f.new}")
        if no_commit or not written:
            continue
        for warning in not_done_locally(cluster.rules, action):
            click.echo(f"warning: {warning}", err=True)
        sha = commit_files(repo, written, action.author, action.message)
        click.echo(f"✔ committed {sha[:7]} ({len(written)} file{'s' * (len(written) != 1)})")
        if push:
            attempts = push_branch(repo, action.push_branch)
            retried = f" after {attempts - 1} rebase{'s' * (attempts > 2)}" if attempts > 1 else ""
            click.echo(f"✔ pushed to branch {action.push_branch}{retried}")
    return 1 if plan.errors else 0


@click.command("plan")
@repo_option
@offline_option
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def plan(ctx: click.Context, repo: Path, offline: bool, fmt: str) -> int:
    """Show the actions gitward would take, with a unified diff of every file it would change.

    Nothing is written: decisions are made in memory from the recorded tags.

    \b
    Example:
      gitward --state state.db.example plan --repo examples/homelab --offline
    """
    plans = _plan(ctx, repo, offline, record=False)
    if fmt == "json":
        dump([_plan_json(name, planned) for name, planned in plans] if len(plans) > 1
             else _plan_json("", plans[0][1]), "json")
        return 1 if any(planned.plan.errors for _, planned in plans) else 0
    for name, planned in plans:
        if name:
            click.echo(f"cluster {name}:")
        _print_plan(planned)
    return 1 if any(planned.plan.errors for _, planned in plans) else 0


def _plan_json(cluster: str, planned: RepoPlan) -> dict[str, object]:
    result = planned.plan
    return {**({"cluster": cluster} if cluster else {}),
            "actions": [a.to_json() for a in result.actions],
            "decisions": [d.to_json() for d in planned.decisions],
            "gates": [g.to_json() for g in result.gates],
            "skipped": list(result.skipped),
            "warnings": [w.to_json() for w in result.warnings],
            "errors": [{"automation": e.automation, **e.problem.to_json()} for e in result.errors]}


def _print_plan(planned: RepoPlan) -> None:
    result = planned.plan
    if not result.actions and not result.errors:
        click.echo("no actions: every marked value is current")
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
    _report_aside(result)


def register(images: click.Group) -> None:
    images.add_command(check_updates)
    images.add_command(update_images)



@click.command("apply")
@repo_option
@offline_option
@ssh_key_option
@workdir_option
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def apply(ctx: click.Context, repo: Path, offline: bool, ssh_key: Path | None, workdir: Path,
          fmt: str) -> int:
    """Carry out the plan: commit and push every image update on a clone of its source.

    Decisions and actions are recorded; one gitward writes to a branch at a time (a lease in the
    store). An HTTPS token for the source may be given in GITWARD_GIT_TOKEN (never stored).
    Applying Kustomizations to a cluster is not built yet.

    \b
    Example:
      gitward apply --repo . --ssh-key ~/.ssh/homelab-rw
    """
    [cluster] = _clusters(repo, writing=True)
    rules = cluster.rules
    now = datetime.now(UTC)
    with ExitStack() as stack, open_for_writing(ctx) as store:
        read_secret = cluster_secrets(stack, rules.all())
        if not offline:
            _scan(store, rules, read_secret)
        planned = plan_checkout(repo, rules, store, now, record=True)
        outcomes = apply_commits(store, rules, planned, now, workdir=workdir,
                                 ssh_command=ssh_command_for(ssh_key),
                                 token=os.environ.get(TOKEN_ENV) or None,
                                 holder=holder_name(), read_secret=read_secret)
    if fmt == "json":
        dump({"actions": [{**o.action.to_json(), "status": o.status, "summary": o.summary,
                           "commit": o.commit} for o in outcomes]}, "json")
    else:
        _report_aside(planned.plan)
        echo_outcomes(outcomes)
    return 1 if planned.plan.errors or any(o.status == "failed" for o in outcomes) else 0


def echo_outcomes(outcomes: list[Applied]) -> bool:
    """One line per commit action and how it ended; True when any failed."""
    if not outcomes:
        click.echo("no actions: every marked value is current")
    for o in outcomes:
        mark = {"done": "✔", "skipped": "•"}.get(o.status, "✗")
        click.echo(f"{mark} {o.action.target}: {o.summary}", err=o.status == "failed")
    return any(o.status == "failed" for o in outcomes)
