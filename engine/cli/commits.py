"""`gitward apply` and `gitward images update`: carry out a plan (engine/cli/updates.py's)."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

import click

from engine.cli.gitaccess import TOKEN_ENV, ssh_command_for, ssh_key_option, workdir_option
from engine.cli.output import dump
from engine.cli.repo import repo_option
from engine.cli.secrets import cluster_secrets
from engine.cli.state import holder_name, open_for_writing
from engine.cli.updates import (
    clusters_for,
    offline_option,
    output_option,
    plan_clusters,
    plan_json,
    report_aside,
    scan_used,
    unknown_note,
)
from engine.clock import utcnow
from engine.reconcile.commits import Applied, CommitOutcome, apply_commits, update_checkout
from engine.reconcile.imagefacts import RegistryAccess
from engine.reconcile.pushsettings import not_done_locally
from engine.reconcile.repo import read_marked_tree
from engine.reconcile.updates import plan_checkout


@click.command("update")
@repo_option
@offline_option
@click.option("--push", "push", is_flag=True, help="Push the commit to the push branch.")
@click.option("--no-commit", is_flag=True, help="Only rewrite the files in the working tree.")
@click.pass_context
def update_images(ctx: click.Context, repo: Path, offline: bool, push: bool, no_commit: bool) -> int:
    """Rewrite marked values in the checkout, commit them, and optionally push.

    Decisions are recorded in the store; each commit carries `Gitward-Decision: <id>` trailers.
    The policies a marker needs that gitward does not know are listed on stderr; the updates it
    can make are made.

    \b
    Examples:
      gitward images update --repo . --push
      gitward images update --repo . --offline --no-commit
    """
    if push and no_commit:
        raise click.UsageError("--push needs a commit: drop --no-commit")
    [cluster] = clusters_for(repo, writing=True)
    [(_, planned)] = plan_clusters(ctx, repo, [cluster], offline, record=True)
    plan = planned.plan
    report_aside(plan)
    if not plan.actions:
        click.echo(f"no updates; {unknown_note(len(plan.unknown))}" if plan.unknown
                   else "no updates")
        return 1 if plan.errors else 0
    if not no_commit:
        for action in plan.actions:
            for warning in not_done_locally(cluster.rules, action):
                click.echo(f"warning: {warning}", err=True)
    with open_for_writing(ctx) as store:
        updates = update_checkout(store, cluster.rules, planned, repo, utcnow(),
                                  commit=not no_commit, push=push, holder=holder_name())
    for update in updates:
        for f in update.applied.action.files:
            click.echo(f"✔ {f.path}:{f.line}  {f.old} -> {f.new}")
        sha, written = update.applied.commit, update.written
        if sha:
            click.echo(f"✔ committed {sha[:7]} ({len(written)} file{'s' * (len(written) != 1)})")
        if update.attempts and sha:
            retried = (f" after {update.attempts - 1} rebase{'s' * (update.attempts > 2)}"
                       if update.attempts > 1 else "")
            click.echo(f"✔ pushed to branch {update.applied.action.push_branch}{retried}")
        elif update.applied.status is CommitOutcome.WAITING:
            click.echo(f"✗ {update.applied.summary}", err=True)
        elif push and update.applied.status is CommitOutcome.SKIPPED:
            click.echo(f"• re-planned on the new head: {update.applied.summary}")
    waiting = any(u.applied.status is CommitOutcome.WAITING for u in updates)
    return 1 if plan.errors or waiting else 0


@click.command("apply")
@repo_option
@offline_option
@ssh_key_option
@workdir_option
@output_option
@click.pass_context
def apply(ctx: click.Context, repo: Path, offline: bool, ssh_key: Path | None, workdir: Path,
          fmt: str) -> int:
    """Carry out the plan: commit and push every image update on a clone of its source.

    Decisions and actions are recorded; one gitward writes to a branch at a time (a lease in the
    store): a commit whose branch another gitward is writing to is reported waiting and not
    pushed (exit 1; a killed writer's lease frees within a minute). An HTTPS token for the
    source may be given in GITWARD_GIT_TOKEN (never stored). Applying Kustomizations to a
    cluster is not built yet.

    \b
    Example:
      gitward apply --repo . --ssh-key ~/.ssh/homelab-rw
    """
    [cluster] = clusters_for(repo, writing=True)
    rules = cluster.rules
    now = utcnow()
    with ExitStack() as stack, open_for_writing(ctx) as store:
        read_secret = cluster_secrets(stack, rules.all())
        if not offline:
            scan_used(store, rules, read_secret)
        planned = plan_checkout(read_marked_tree(repo, rules), rules, store, now, record=True,
                                access=None if offline else RegistryAccess(read_secret=read_secret))
        outcomes = apply_commits(store, rules, planned, now, workdir=workdir,
                                 ssh_command=ssh_command_for(ssh_key),
                                 token=os.environ.get(TOKEN_ENV) or None,
                                 holder=holder_name(), read_secret=read_secret)
    if fmt == "json":
        dump({**plan_json("", planned),
              "actions": [{**o.action.to_json(), "status": o.status, "summary": o.summary,
                           "commit": o.commit} for o in outcomes]}, "json")
    else:
        report_aside(planned.plan)
        echo_outcomes(outcomes, len(planned.plan.unknown))
    unfinished = any(o.unfinished for o in outcomes)
    return 1 if planned.plan.errors or unfinished else 0


def echo_outcomes(outcomes: list[Applied], unknown: int = 0) -> bool:
    """One line per commit action and how it ended (and how many marked policies are unknown);
    True when any failed or waits for another gitward writing to its branch (nothing pushed)."""
    if unknown:
        click.echo(("no actions; " if not outcomes else "") + unknown_note(unknown))
    elif not outcomes:
        click.echo("no actions: every marked value is current")
    for o in outcomes:
        mark = _MARKS.get(o.status, "✗")
        click.echo(f"{mark} {o.action.target}: {o.summary}", err=o.unfinished)
    return any(o.unfinished for o in outcomes)


_MARKS = {CommitOutcome.DONE: "✔", CommitOutcome.SKIPPED: "•", CommitOutcome.WAITING: "◎"}
