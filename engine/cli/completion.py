"""`gitward completion bash|zsh|fish`: the shell's completion script, from click's own."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
_VARIABLE = "_GITWARD_COMPLETE"
"""The environment variable the script sets when it asks gitward for completions."""


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> int:
    """Print the shell completion script for bash, zsh or fish.

    \b
    Examples:
      source <(gitward completion bash)                      # this shell only
      gitward completion zsh > "${fpath[1]}/_gitward"         # zsh, every shell
      gitward completion fish > ~/.config/fish/completions/gitward.fish
    """
    root = ctx.find_root().command
    found = get_completion_class(shell)
    assert found is not None, f"click knows no {shell} completion"
    click.echo(found(root, {}, "gitward", _VARIABLE).source())
    return 0
