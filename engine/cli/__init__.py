"""The `gitward` command: Flux's nouns and verbs over gitward's rules and state store.

Each command parses its arguments, calls one library function and prints. Errors a user can
cause are `GitwardError`s: printed as one clean message, exit 2 for bad input and 1 for
failures; Ctrl-C exits 130; anything else is a bug and says so (traceback with GITWARD_DEBUG=1).
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from engine import __version__
from engine.cli.build import build
from engine.cli.check import check
from engine.cli.convert import convert, export
from engine.cli.diff import diff
from engine.cli.db import db
from engine.cli.events import events, logs
from engine.cli.explain import explain
from engine.cli.get import get
from engine.cli.images import images
from engine.cli.reconcile import reconcile
from engine.cli.run import run
from engine.cli.sql import sql
from engine.cli.suspend import resume, suspend
from engine.cli.trace import trace
from engine.cli.updates import apply, plan, register
from engine.cli.watch import watch
from engine.errors import GitwardError, RuleError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gitward")
@click.option(
    "--state",
    envvar="GITWARD_STATE",
    metavar="URL",
    help="State store: a SQLite path or a SQLAlchemy URL (env GITWARD_STATE; default "
         ".git/gitward/state.db inside a git work tree, else ./state.db).",
)
@click.pass_context
def cli(ctx: click.Context, state: str | None) -> None:
    """gitward keeps a Git repository and a Kubernetes cluster in sync, like Flux, in the open.

    Rules come from Flux manifests and *.rules files in the repository; facts (git revisions,
    registry tags, applied objects) and every decision are recorded in a SQL store you can query.
    """
    ctx.ensure_object(dict)
    ctx.obj["state"] = state


register(images)
for command in (check, get, export, convert, db, suspend, resume, images, explain, reconcile,
                plan, apply, sql, build, events, logs, diff, trace, watch, run):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn every outcome into an exit code."""
    try:
        result = cli.main(args=argv, prog_name="gitward", standalone_mode=False)
    except GitwardError as err:
        click.echo(f"{_prefix(err)}{err}", err=True)
        return err.exit_code
    except click.exceptions.Abort:
        click.echo("gitward: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("gitward: interrupted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return 2 if isinstance(err, click.UsageError) else err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except Exception as err:  # a bug: say so, without hiding it from whoever debugs it
        if os.environ.get("GITWARD_DEBUG"):
            traceback.print_exc()
        click.echo(
            f"gitward: internal error: {type(err).__name__}: {err}\n"
            "This is a bug in gitward; run again with GITWARD_DEBUG=1 for the traceback.",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0


def _prefix(err: GitwardError) -> str:
    """Located rule errors carry their own `path:line:col:` prefix; others get `gitward: `."""
    return "" if isinstance(err, RuleError) else "gitward: "


if __name__ == "__main__":
    sys.exit(main())
