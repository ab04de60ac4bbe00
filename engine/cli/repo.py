"""The options that say which rules a command reads (`--repo`, `--cluster`, `--source`), and
reading them the one way every command does.

A command that acts reports what it could not use: the objects it skipped and why, and what
gitward inferred (a bootstrap source). Every other problem is `gitward check`'s to print in
full; a command says how many there are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from engine.cli.kinds import Kind, find
from engine.errors import Problems, Severity, UserError
from engine.evaluate.discover import SourceHint
from engine.model import ObjectKey, Rule
from engine.reconcile.repo import Loaded, LoadedCluster, RepoSpec, load_repository

F = TypeVar("F", bound=Callable[..., Any])

_CLUSTER = "gitward.cluster"
_SOURCES = "gitward.sources"
_SAID = ("inferred-source", "no-entry")
"""Notes a command repeats on every run (check prints every note)."""


def _keep(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, _: click.Parameter, value: Any) -> None:
        ctx.meta[key] = value
    return store


def repo_option(f: F) -> F:
    """`--repo PATH`, plus `--cluster PATH` and `--source NAME=URL#BRANCH` (read by `spec`)."""
    f = click.option(
        "--source", "sources", multiple=True, metavar="NAME=URL#BRANCH", expose_value=False,
        callback=_keep(_SOURCES),
        help="A GitRepository git does not hold (flux bootstrap creates flux-system in the "
             "cluster); NAME may be NAMESPACE/NAME. Repeatable.")(f)
    f = click.option(
        "--cluster", "cluster", metavar="PATH", expose_value=False, callback=_keep(_CLUSTER),
        help="The cluster directory to read (the path `flux bootstrap --path` named); by "
             "default every directory holding flux-system/gotk-sync.yaml.")(f)
    f = click.option(
        "--repo", "repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
        show_default=True, help="The repository checkout to read rules and manifests from.")(f)
    return f


def spec(repo: Path) -> RepoSpec:
    """What the running command was asked to read."""
    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    return RepoSpec(repo, meta.get(_CLUSTER), tuple(meta.get(_SOURCES) or ()))


def load(repo: Path, *, hints: Mapping[ObjectKey, SourceHint] | None = None) -> Loaded:
    """Every cluster of the checkout; what was skipped or inferred is said on stderr. `hints`
    are sources git does not hold (`live_sources` of a cluster, engine/reconcile/live.py)."""
    loaded = load_repository(spec(repo), hints=hints)
    say_loaded(loaded)
    return loaded


def load_one(repo: Path, *, hints: Mapping[ObjectKey, SourceHint] | None = None) -> LoadedCluster:
    """The one cluster a command acts on (several need `--cluster`)."""
    return load(repo, hints=hints).one()


def say_loaded(loaded: Loaded) -> None:
    problems: Problems = loaded.problems
    for note in problems.notes:
        if note.code in _SAID:
            click.echo(f"note: {note.message}", err=True)
    for skipped in loaded.skipped:
        where = f" ({skipped.origin})" if skipped.origin else ""
        click.echo(f"skipped: {skipped.key.kind} {skipped.key.ref}{where}: {skipped.reason}", err=True)
    errors = [p for p in problems.items if p.severity is Severity.ERROR]
    if errors:
        plural = "s" * (len(errors) != 1)
        click.echo(f"{len(errors)} error{plural} in the repository left some objects out: "
                   "`gitward check` shows them", err=True)


def find_in(loaded: Loaded, kind: Kind, ref: str, namespace: str) -> tuple[LoadedCluster, Rule]:
    """The object a user named, in whichever cluster holds it; a skipped one says why."""
    found: list[tuple[LoadedCluster, Rule]] = []
    errors: list[UserError] = []
    for cluster in loaded.clusters:
        try:
            found.append((cluster, find(kind, cluster.rules, ref, namespace)))
        except UserError as err:
            errors.append(err)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        names = ", ".join(c.name for c, _ in found)
        raise UserError(f"{kind.flux_kind} {ref} is defined in several clusters ({names}): "
                        "name one with --cluster")
    wanted = ref if "/" in ref else f"{namespace}/{ref}"
    for skipped in loaded.skipped:
        if skipped.key.kind == kind.flux_kind and skipped.key.ref == wanted:
            raise UserError(f"{kind.flux_kind} {wanted} is skipped: {skipped.reason}")
    raise errors[0] if errors else UserError(f"{kind.flux_kind} {wanted} not found")
