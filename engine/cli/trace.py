"""`gitward trace KIND NS/NAME`: which Kustomization applied an object, from which revision of
which source, like `flux trace`, offline: from the rules and the store's inventory alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import click

from engine.cli.repo import load_one, repo_option
from engine.cli.state import open_for_reading, state_option_url
from engine.errors import UserError
from engine.model import ClusterObject, GitRevision, GitSource, Kustomization, ObjectKey, RuleSet
from engine.observe.git import revision_of
from engine.redact import public_url
from engine.store.db import Store
from engine.store.inventory import applied_revision, list_inventory
from engine.store.queries import latest_git_revision
from engine.store.status import ObjectStatus, object_status


@dataclass(frozen=True)
class Trace:
    """One inventory row of the object, the Kustomization holding it, and that one's source."""

    entry: ClusterObject
    kustomization: Kustomization
    status: ObjectStatus
    applied: str
    source: GitSource | None
    fetched: GitRevision | None

    def to_json(self) -> dict[str, object]:
        obj, ks = self.entry.object, self.kustomization
        source: dict[str, object] | None = None
        if self.source is not None:
            fetched = self.fetched
            source = {"kind": GitSource.KIND, "namespace": self.source.namespace,
                      "name": self.source.name, "url": public_url(self.source.url),
                      "ref": self.source.ref.describe(),
                      "revision": _revision(fetched) if fetched else None,
                      "fetched_at": _when(fetched.fetched_at) if fetched else None,
                      "author": fetched.author or None if fetched else None,
                      "message": _subject(fetched.message) or None if fetched else None}
        return {
            "object": {"apiVersion": self.entry.api_version, "kind": obj.kind,
                       "namespace": obj.namespace or None, "name": obj.name, "id": str(obj)},
            "managed": self.entry.pruned_at is None,
            "applied": {"revision": self.entry.revision, "at": _when(self.entry.applied_at),
                        "checksum": self.entry.checksum,
                        "pruned_at": _when(self.entry.pruned_at) if self.entry.pruned_at else None},
            "kustomization": {"namespace": ks.namespace, "name": ks.name, "path": ks.path or "./",
                              "ready": self.status.ready, "message": self.status.message,
                              "revision": self.applied or None,
                              "suspended": self.status.suspended},
            "source": source,
        }

    def lines(self) -> list[str]:
        """Flux-style blocks: the object, its Kustomization, the GitRepository."""
        obj, ks, entry = self.entry.object, self.kustomization, self.entry
        state = ("Managed by gitward" if entry.pruned_at is None
                 else f"Pruned by gitward at {_when(entry.pruned_at)}")
        out = [f"Object:         {obj}", f"API version:    {entry.api_version}",
               f"Status:         {state}", "---",
               f"Kustomization:  {ks.key.ref}", f"Path:           {ks.path or './'}",
               f"Applied:        {entry.revision} at {_when(entry.applied_at)}",
               f"Last applied:   {self.applied or 'none'}",
               f"Ready:          {self.status.ready}" + (f": {self.status.message}"
                                                          if self.status.message else "")]
        if self.status.suspended:
            out.append("Suspended:      True")
        out.append("---")
        ref = ks.source_ref
        if self.source is None:
            out.append(f"GitRepository:  {ref.namespace or ks.namespace}/{ref.name} (not defined)")
            return out
        out += [f"GitRepository:  {self.source.key.ref}", f"URL:            {public_url(self.source.url)}",
                f"Ref:            {self.source.ref.describe()}"]
        if self.fetched is None:
            out.append("Revision:       not fetched yet")
            return out
        latest = _revision(self.fetched)
        behind = "" if _sha(latest) == _sha(self.applied) else " (not applied yet)"
        out.append(f"Revision:       {latest}{behind}, fetched {_when(self.fetched.fetched_at)}")
        if self.fetched.message or self.fetched.author:
            out.append(f"Commit:         '{_subject(self.fetched.message)}' by {self.fetched.author}")
        return out


@dataclass(frozen=True)
class ObjectQuery:
    """What the user named: a kind word (`deployment`, `Deployment.apps`, `deployments`), and a
    name with its namespace (None: any namespace, or cluster-scoped)."""

    kind: str
    group: str | None
    namespace: str | None
    name: str

    @staticmethod
    def parse(kind: str, ref: str, namespace: str | None) -> ObjectQuery:
        word, dot, group = kind.partition(".")
        ns, slash, name = ref.partition("/")
        if not slash:
            return ObjectQuery(word, group if dot else None, namespace, ref)
        return ObjectQuery(word, group if dot else None, ns, name)

    def matches(self, entry: ClusterObject) -> bool:
        obj = entry.object
        if obj.name != self.name or (self.namespace is not None and obj.namespace != self.namespace):
            return False
        if self.group is not None and obj.group != self.group:
            return False
        kind, word = obj.kind.lower(), self.kind.lower()
        plural = kind[:-1] + "ies" if kind.endswith("y") else kind + ("es" if kind.endswith("s") else "s")
        return word in (kind, plural)

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group is not None else self.kind
        return f"{kind} {self.namespace}/{self.name}" if self.namespace else f"{kind} {self.name}"


def trace_object(store: Store, rules: RuleSet, query: ObjectQuery) -> tuple[Trace, ...]:
    """Every inventory row (pruned ones too) of the objects matching `query`, across the rules'
    Kustomizations, with the Kustomization's status and its source's latest fetched revision."""
    found: list[Trace] = []
    for ks in rules.kustomizations:
        ref = ks.key.ref
        entries = [e for e in list_inventory(store, ref, include_pruned=True) if query.matches(e)]
        if not entries:
            continue
        status, applied = object_status(store, ks), applied_revision(store, ref)
        source_ref = ks.source_ref
        source = rules.get(ObjectKey(GitSource.KIND, source_ref.namespace or ks.namespace,
                                     source_ref.name))
        git = source if isinstance(source, GitSource) else None
        fetched = latest_git_revision(store, git.key.ref) if git else None
        found.extend(Trace(e, ks, status, applied, git, fetched) for e in entries)
    return tuple(sorted(found, key=lambda t: (t.entry.pruned_at is not None, t.entry.object,
                                              t.kustomization.key)))


@click.command()
@click.argument("kind")
@click.argument("ref", metavar="NS/NAME")
@repo_option
@click.option("-n", "--namespace", default=None,
              help="The object's namespace, when NAME has none (default: any namespace).")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for scripts.")
@click.pass_context
def trace(ctx: click.Context, kind: str, ref: str, repo: Path, namespace: str | None, fmt: str) -> int:
    """Trace a cluster object back to git: the Kustomization whose inventory holds it, the
    revision that last applied it and when, and the GitRepository (URL without credentials)
    with its latest fetched revision. Offline: reads the rules and the state store only.
    KIND is a kind, optionally with its group (`deployment`, `Deployment.apps`). Exit 2 when
    the object is in no Kustomization's inventory.

    \b
    Examples:
      gitward trace deployment podinfo/podinfo
      gitward trace Deployment.apps podinfo -n podinfo -o json
      gitward trace namespace podinfo
    """
    rules = load_one(repo).rules
    query = ObjectQuery.parse(kind, ref, namespace)
    store = open_for_reading(ctx)
    if store is None:
        raise UserError(f"{query} is in no inventory: the state store "
                        f"{public_url(state_option_url(ctx))} does not exist (nothing applied yet)")
    with store:
        traces = trace_object(store, rules, query)
    managed = [t for t in traces if t.entry.pruned_at is None]
    if not managed:
        pruned = "".join(f"; pruned from Kustomization {t.kustomization.key.ref} at "
                         f"{_when(t.entry.pruned_at)} (applied at {t.entry.revision})"
                         for t in traces if t.entry.pruned_at is not None)
        raise UserError(f"{query} is in no Kustomization's inventory{pruned}")
    if fmt == "json":
        click.echo(json.dumps([t.to_json() for t in managed], indent=2, ensure_ascii=False))
        return 0
    for i, t in enumerate(managed):
        if i:
            click.echo("")
        for line in t.lines():
            click.echo(line)
    return 0


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def _revision(rev: GitRevision) -> str:
    return revision_of(rev.branch, rev.sha)


def _sha(revision: str) -> str:
    return revision.rpartition(":")[2]


def _subject(message: str) -> str:
    return message.strip().split("\n", 1)[0]
