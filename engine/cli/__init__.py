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
from engine.cli.lazy import LazyCommand, LazyGroup
from engine.errors import GitwardError, RuleError

COMMANDS = {
    "apply": LazyCommand(
        "engine.cli.commits:apply",
        "Carry out the plan: commit and push every image update on a clone of its source."),
    "build": LazyCommand(
        "engine.cli.build:build",
        "Render objects from the local checkout, as Flux would build them (offline)."),
    "check": LazyCommand(
        "engine.cli.check:check",
        "Check rule files and Flux manifests: syntax, references, regexes, ranges, lints."),
    "completion": LazyCommand(
        "engine.cli.completion:completion",
        "Print the shell completion script for bash, zsh or fish."),
    "convert": LazyCommand(
        "engine.cli.convert:convert",
        "Turn Flux YAML into gitward rules, or rules into Flux YAML."),
    "db": LazyCommand(
        "engine.cli.db:db",
        "Inspect and upgrade the state database's schema."),
    "diff": LazyCommand(
        "engine.cli.diff:diff",
        "Compare the local checkout with the live cluster (server-side dry-run, never a "
        "write)."),
    "events": LazyCommand(
        "engine.cli.events:events",
        "Show recorded events, newest last."),
    "explain": LazyCommand(
        "engine.cli.explain:explain",
        "Explain a policy's last decision: the winner, why the runner-up lost, what was "
        "dropped."),
    "export": LazyCommand(
        "engine.cli.convert:export",
        "Write objects as clean Flux YAML (like `flux export`)."),
    "get": LazyCommand(
        "engine.cli.get:get",
        "Show objects and their state: sources git|oci|helm|chart|bucket|all, kustomizations,"
        " images repository|policy|update, helmreleases, all."),
    "images": LazyCommand(
        "engine.cli.images:images",
        "Image repositories and policies: the tag ledger and offline policy tests."),
    "logs": LazyCommand(
        "engine.cli.events:logs",
        "Print recorded events as log lines: `time level object reason: message`."),
    "plan": LazyCommand(
        "engine.cli.updates:plan",
        "Show the actions gitward would take, with a unified diff of every file it would "
        "change."),
    "reconcile": LazyCommand(
        "engine.cli.reconcile:reconcile",
        "Reconcile an object now: `source git NAME` fetches its revision; `source oci NAME` "
        "pulls its artifact (verified, unpacked); `kustomization NAME` renders its path at "
        "the source's revision and applies it to the cluster (prune, health), after the "
        "Kustomizations it dependsOn are Ready (`--all`: every one, dependencies first); "
        "`image repository NAME` scans its registry and re-decides its policies; `image "
        "policy NAME` re-decides from the recorded tags; `image update NAME` commits and "
        "pushes the automation's updates."),
    "resume": LazyCommand(
        "engine.cli.suspend:resume",
        "Resume reconciliation of suspended objects."),
    "run": LazyCommand(
        "engine.cli.run:run",
        "Run the controller loop: fetch sources, scan image repositories, push image updates "
        "and (with a cluster) apply Kustomizations, each on its own interval, until SIGTERM "
        "or Ctrl-C."),
    "sql": LazyCommand(
        "engine.cli.sql:sql",
        "Run one read-only query (SELECT, WITH, VALUES, EXPLAIN) against the state store."),
    "suspend": LazyCommand(
        "engine.cli.suspend:suspend",
        "Suspend reconciliation of objects (recorded in the store)."),
    "trace": LazyCommand(
        "engine.cli.trace:trace",
        "Trace a cluster object back to git: the Kustomization whose inventory holds it, the "
        "revision that last applied it and when, and the GitRepository (URL without "
        "credentials) with its latest fetched revision."),
    "ui": LazyCommand(
        "engine.cli.ui:ui",
        "Serve read-only web pages of the rules and the store: overview, image policies, "
        "repositories and automations, Kustomizations, live events, lead time, SQL."),
    "watch": LazyCommand(
        "engine.cli.watch:watch",
        "Watch a checkout and re-plan on every change to its rules or manifests."),
}
"""Every command by name, imported only when it runs (engine/cli/lazy.py says why)."""


@click.group(cls=LazyGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


GLOBAL_OPTIONS = ("--state",)
"""Options of the root group that are also accepted after the subcommand, as kubectl and flux
accept their global flags anywhere (`gitward get images policy --state s.db`)."""


def global_options_first(args: list[str]) -> list[str]:
    """`args` with every global option (and its value) moved to the front, in order, so the root
    group parses it wherever it was given; nothing after a `--` is touched. The last one given
    wins, as in click."""
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        name = arg.partition("=")[0]
        if name in GLOBAL_OPTIONS:
            takes_next = "=" not in arg
            if takes_next and index + 1 == len(args):
                raise click.UsageError(f"Option '{name}' requires an argument.")
            hoisted.extend(args[index:index + 2] if takes_next else [arg])
            index += 2 if takes_next else 1
            continue
        rest.append(arg)
        index += 1
    return hoisted + rest


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn every outcome into an exit code."""
    try:
        args = global_options_first(sys.argv[1:] if argv is None else list(argv))
        result = cli.main(args=args, prog_name="gitward", standalone_mode=False)
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
