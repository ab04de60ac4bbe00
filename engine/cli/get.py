"""`gitward get`: objects from the rules with their state from the store (like `flux get`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from engine.cli.check import repo_option
from engine.cli.kinds import (
    IMAGE_POLICY,
    IMAGE_REPOSITORY,
    IMAGE_UPDATE,
    KINDS,
    KUSTOMIZATION,
    SOURCE_GIT,
    SOURCE_OCI,
    Kind,
    parse_kind,
)
from engine.cli.output import dump, output_option, table
from engine.cli.state import open_for_reading
from engine.errors import Problems
from engine.rules.load import load_repo
from engine.store.status import ObjectStatus, object_status, short_revision

IMAGE_KINDS = (IMAGE_REPOSITORY, IMAGE_POLICY, IMAGE_UPDATE)
SOURCE_KINDS = (SOURCE_GIT, SOURCE_OCI)


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("words", nargs=-1, required=True)
@repo_option
@click.option("-n", "--namespace", default="flux-system", show_default=True,
              help="Only objects of this namespace.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Objects of every namespace.")
@output_option
@click.pass_context
def get(ctx: click.Context, words: tuple[str, ...], repo: Path, namespace: str,
        all_namespaces: bool, fmt: str) -> int:
    """Show objects and their state: sources git|oci|all, kustomizations, images
    repository|policy|update, all.

    \b
    Examples:
      gitward get sources git
      gitward get sources oci -A
      gitward get images policy -A -o json
      gitward --state state.db.example get all --repo examples/homelab -A
    """
    kinds = _kinds(words)
    problems = Problems()
    rules = load_repo(repo, problems).rules
    problems.raise_if_errors()
    store = open_for_reading(ctx)
    try:
        sections = [
            (kind, [object_status(store, r) for r in kind.objects(rules)
                    if all_namespaces or r.key.namespace == namespace])
            for kind in kinds
        ]
    finally:
        if store is not None:
            store.close()
    if fmt != "table":
        dump([s.to_json() for _, rows in sections for s in rows], fmt)
        return 0
    shown = [(kind, rows) for kind, rows in sections if rows or len(kinds) == 1]
    for i, (kind, rows) in enumerate(shown):
        if len(kinds) > 1:
            click.echo(("\n" if i else "") + f"{kind.title}:")
        if not rows:
            where = "any namespace" if all_namespaces else f"namespace {namespace}"
            click.echo(f"no {kind.title} found in {where}", err=True)
            continue
        columns, cells = _columns(kind, rows, all_namespaces)
        table(columns, cells)
    return 0


def _kinds(words: tuple[str, ...]) -> tuple[Kind, ...]:
    if words == ("all",):
        return KINDS
    if words in (("images",), ("images", "all"), ("image", "all")):
        return IMAGE_KINDS
    if words in (("sources",), ("sources", "all"), ("source", "all")):
        return SOURCE_KINDS
    kind, rest = parse_kind(words)
    if rest:
        raise click.UsageError(f"unexpected {' '.join(rest)!r}: `get` lists every object of a kind")
    return (kind,)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def _columns(kind: Kind, rows: list[ObjectStatus], namespaced: bool
             ) -> tuple[list[str], list[list[object]]]:
    cells: list[list[object]]
    if kind in (SOURCE_GIT, SOURCE_OCI, KUSTOMIZATION):
        columns = ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
        cells = [[s.name, short_revision(s.revision), str(s.suspended), s.ready, s.message] for s in rows]
    elif kind is IMAGE_REPOSITORY:
        columns = ["NAME", "TAGS", "LAST SCAN", "SUSPENDED", "READY", "MESSAGE"]
        cells = [[s.name, "" if s.tags is None else s.tags, _when(s.last), str(s.suspended), s.ready,
                  s.message] for s in rows]
    elif kind is IMAGE_POLICY:
        columns = ["NAME", "LATEST TAG", "PREVIOUS", "READY", "MESSAGE"]
        cells = [[s.name, s.latest, s.previous, s.ready, s.message] for s in rows]
    else:
        columns = ["NAME", "LAST RUN", "SUSPENDED", "READY", "MESSAGE"]
        cells = [[s.name, _when(s.last), str(s.suspended), s.ready, s.message] for s in rows]
    if namespaced:
        columns = ["NAMESPACE", *columns]
        cells = [[s.namespace, *c] for s, c in zip(rows, cells)]
    return columns, cells
