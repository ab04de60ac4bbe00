"""`gitward get`: objects from the rules with their state from the store (like `flux get`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from engine.cli.repo import load, repo_option
from engine.cli.kinds import (
    IMAGE_POLICY,
    IMAGE_REPOSITORY,
    IMAGE_UPDATE,
    KINDS,
    KUSTOMIZATION,
    LISTED_KINDS,
    SOURCE_GIT,
    SOURCE_OCI,
    Kind,
    parse_kind,
)
from engine.cli.output import dump, output_option, table
from engine.cli.state import open_for_reading
from engine.reconcile.repo import LoadedCluster
from engine.store.db import Store
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
    """Show objects and their state: sources git|oci|helm|chart|bucket|all, kustomizations,
    images repository|policy|update, helmreleases, all.

    Objects gitward left out (a reference that does not resolve, an error of their own) are
    listed with READY False and the reason; Flux kinds gitward does not reconcile are listed
    as such. A repository with several clusters is shown cluster by cluster.

    \b
    Examples:
      gitward get sources git
      gitward get sources oci -A
      gitward get images policy -A -o json
      gitward --state state.db.example get all --repo examples/homelab -A
    """
    kinds = _kinds(words)
    loaded = load(repo)
    store = open_for_reading(ctx)
    try:
        clusters = [(cluster, [(kind, _rows(store, cluster, kind, namespace, all_namespaces))
                               for kind in kinds])
                    for cluster in loaded.clusters]
    finally:
        if store is not None:
            store.close()
    several = len(clusters) > 1
    if fmt != "table":
        dump([{**s.to_json(), **({"cluster": c.name} if several else {})}
              for c, sections in clusters for _, rows in sections for s in rows], fmt)
        return 0
    for n, (cluster, sections) in enumerate(clusters):
        if several:
            click.echo(("\n" if n else "") + f"cluster {cluster.name}:")
        _print_sections(kinds, sections, namespace, all_namespaces)
    return 0


def _rows(store: Store | None, cluster: LoadedCluster, kind: Kind, namespace: str,
          every: bool) -> list[ObjectStatus]:
    """The kind's usable objects with their state, then the skipped ones with their reason."""
    rows = [object_status(store, r) for r in kind.objects(cluster.rules)
            if every or r.key.namespace == namespace]
    rows += [ObjectStatus(s.key.kind, s.key.namespace, s.key.name, "False",
                          f"skipped: {s.reason}", False)
             for s in cluster.skipped
             if s.key.kind == kind.flux_kind and (every or s.key.namespace == namespace)]
    return rows


def _print_sections(kinds: tuple[Kind, ...], sections: list[tuple[Kind, list[ObjectStatus]]],
                    namespace: str, every: bool) -> None:
    shown = [(kind, rows) for kind, rows in sections if rows or len(kinds) == 1]
    for i, (kind, rows) in enumerate(shown):
        if len(kinds) > 1:
            click.echo(("\n" if i else "") + f"{kind.title}:")
        if not rows:
            where = "any namespace" if every else f"namespace {namespace}"
            click.echo(f"no {kind.title} found in {where}", err=True)
            continue
        columns, cells = _columns(kind, rows, every)
        table(columns, cells)


def _kinds(words: tuple[str, ...]) -> tuple[Kind, ...]:
    if words == ("all",):
        return (*KINDS, *LISTED_KINDS)
    if words in (("images",), ("images", "all"), ("image", "all")):
        return IMAGE_KINDS
    if words in (("sources",), ("sources", "all"), ("source", "all")):
        return (*SOURCE_KINDS, *(k for k in LISTED_KINDS if k.words[0] == "source"))
    kind, rest = parse_kind(words, (*KINDS, *LISTED_KINDS))
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
    elif kind.flux:
        columns = ["NAME", "READY", "MESSAGE"]
        cells = [[s.name, s.ready, s.message] for s in rows]
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
