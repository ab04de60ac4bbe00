"""`gitward suspend|resume KIND NAME`: recorded in the store, so it survives restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from engine.cli.repo import load_one, repo_option
from engine.cli.kinds import find, parse_kind
from engine.cli.state import open_for_writing
from engine.errors import UserError
from engine.model import Rule
from engine.store import queries


def _targets(words: tuple[str, ...], repo: Path, namespace: str, every: bool) -> list[Rule]:
    kind, names = parse_kind(words)
    rules = load_one(repo).rules
    if every:
        return [r for r in kind.objects(rules) if r.key.namespace == namespace]
    if not names:
        raise UserError(f"name the {kind.flux_kind} to act on, or pass --all")
    return [find(kind, rules, name, namespace) for name in names]


_common = [
    click.argument("words", nargs=-1, required=True),
    repo_option,
    click.option("-n", "--namespace", default="flux-system", show_default=True),
    click.option("--all", "every", is_flag=True, help="Every object of the kind in the namespace."),
]


F = TypeVar("F", bound=Callable[..., Any])


def _options(f: F) -> F:
    """The arguments `suspend` and `resume` share."""
    for option in reversed(_common):
        f = option(f)
    return f


@click.command()
@_options
@click.option("--reason", default="", help="Why, for whoever reads `gitward get` later.")
@click.pass_context
def suspend(ctx: click.Context, words: tuple[str, ...], repo: Path, namespace: str, every: bool,
            reason: str) -> int:
    """Suspend reconciliation of objects (recorded in the store).

    \b
    Example:
      gitward suspend image update podinfo -n podinfo
    """
    targets = _targets(words, repo, namespace, every)
    with open_for_writing(ctx) as store:
        for rule in targets:
            queries.suspend(store, rule.KIND, rule.key.ref, reason=reason)
            click.echo(f"► suspended {rule.KIND} {rule.key.ref}")
    return 0


@click.command()
@_options
@click.pass_context
def resume(ctx: click.Context, words: tuple[str, ...], repo: Path, namespace: str,
           every: bool) -> int:
    """Resume reconciliation of suspended objects.

    \b
    Example:
      gitward resume image update podinfo -n podinfo
    """
    targets = _targets(words, repo, namespace, every)
    with open_for_writing(ctx) as store:
        for rule in targets:
            lifted = queries.resume(store, rule.KIND, rule.key.ref)
            state = "resumed" if lifted else "was not suspended:"
            click.echo(f"► {state} {rule.KIND} {rule.key.ref}")
    return 0
