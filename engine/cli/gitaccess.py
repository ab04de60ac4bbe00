"""The options of commands that clone or fetch git sources: `--ssh-key`, `--workdir`, and the
HTTPS token in GITWARD_GIT_TOKEN (never stored).

They are apart from engine/cli/sources.py so that a command taking them (plan, build) imports
click and nothing of what a fetch needs.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

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
