"""`gitward reconcile source git NAME`: fetch a GitRepository now and record its revision.

`reconcile_source_command` is called by `gitward reconcile` (engine/cli/reconcile.py), which
carries the options below. An HTTPS token may be given in GITWARD_GIT_TOKEN (never stored).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import cast

import click

from engine.cli.kinds import SOURCE_GIT, find
from engine.cli.state import open_for_writing
from engine.errors import Problems
from engine.model import GitSource
from engine.reconcile.sources import reconcile_source
from engine.rules.load import load_repo
from engine.store import queries

TOKEN_ENV = "GITWARD_GIT_TOKEN"

ssh_key_option = click.option(
    "--ssh-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A deploy key for ssh:// sources (else GIT_SSH_COMMAND or ssh's defaults).")
workdir_option = click.option(
    "--workdir", type=click.Path(file_okay=False, path_type=Path),
    default=lambda: Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gitward",
    show_default="~/.cache/gitward", help="Where clones of the sources are kept between runs.")


def ssh_command_for(ssh_key: Path | None) -> str | None:
    """The GIT_SSH_COMMAND carrying `ssh_key`, never prompting; else the inherited one."""
    if ssh_key is None:
        return os.environ.get("GIT_SSH_COMMAND")
    return f"ssh -i {shlex.quote(str(ssh_key))} -o IdentitiesOnly=yes -o BatchMode=yes"


def reconcile_source_command(ctx: click.Context, names: tuple[str, ...], *, repo: Path,
                             namespace: str, ssh_key: Path | None, workdir: Path) -> int:
    """Fetch each named GitRepository and print its revision; 1 when any fetch failed."""
    problems = Problems()
    rules = load_repo(repo, problems).rules
    problems.raise_if_errors()
    sources = [cast(GitSource, find(SOURCE_GIT, rules, name, namespace)) for name in names]
    ssh_command = ssh_command_for(ssh_key)
    token = os.environ.get(TOKEN_ENV) or None
    failed = False
    with open_for_writing(ctx) as store:
        for source in sources:
            ref = source.key.ref
            if source.suspend or queries.is_suspended(store, source.KIND, ref):
                click.echo(f"✗ GitRepository {ref} is suspended: resume it first", err=True)
                failed = True
                continue
            click.echo(f"► fetching GitRepository {ref} ({source.ref.describe()})")
            outcome = reconcile_source(store, source, cache_dir=workdir, ssh_command=ssh_command,
                                       token=token)
            if outcome.checkout is None:
                click.echo(f"✗ {outcome.error}", err=True)
                failed = True
            else:
                click.echo(f"✔ fetched revision {outcome.checkout.revision}")
    return 1 if failed else 0
