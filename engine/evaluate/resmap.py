"""The objects of a kustomize build in progress, and how kustomize finds them again.

Each object remembers the ids it had before a transformer renamed or moved it (kustomize's
`previousNames`/`previousNamespaces`/`previousKinds`), since patches find their targets by any
of them. Bodies are shared with the parse cache and never mutated: a transformer replaces an
object's body with a new one built along the changed path.

An object the build does not keep (see engine/evaluate/kustomize.py `keep`) still takes part in
everything that can fail or change which objects exist (ids, duplicates, renames, deletions);
only the work on its contents (patches, images) is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.evaluate.resid import ResId, Target, res_id, string_map


@dataclass(eq=False)
class Resource:
    """One object: its current body, where it was read, the ids it had before."""

    body: Mapping[str, Any]
    file: str
    """Repo-relative file it was read from ("" for a generated object)."""
    document: int
    line: int
    kept: bool
    """Whether the build carries its contents (the caller's `keep` said so)."""
    generated: bool = False
    """A ConfigMap or Secret from a generator: its id only, never rendered."""
    previous: list[ResId] = field(default_factory=list)
    """Earlier ids, oldest first; each has the effective namespace, as kustomize stores it."""

    @property
    def id(self) -> ResId:
        return res_id(self.body)

    @property
    def original(self) -> ResId:
        """The first id it had (kustomize's OrgId): its kind, name and namespace then, its
        apiVersion now."""
        if not self.previous:
            return self.id
        first = self.previous[0]
        return ResId(self.id.api_version, first.kind, first.name, first.namespace)

    def ids(self) -> list[ResId]:
        """Every id it had, current last."""
        current = self.id
        return [ResId(current.api_version, p.kind, p.name, p.namespace) for p in self.previous] + [current]

    def remember_id(self) -> None:
        """Record the current id before a transformer changes it (StorePreviousId)."""
        current = self.id
        self.previous.append(ResId(current.api_version, current.kind, current.name,
                                   current.effective_namespace))

    def metadata(self) -> Mapping[str, Any]:
        meta = self.body.get("metadata")
        return meta if isinstance(meta, dict) else {}

    def labels(self) -> dict[str, str]:
        return string_map(self.metadata().get("labels"))

    def annotations(self) -> dict[str, str]:
        return string_map(self.metadata().get("annotations"))

    def with_metadata(self, **changes: Any) -> None:
        """Replace metadata fields (None removes one), sharing the rest of the body."""
        meta = dict(self.metadata())
        for key, value in changes.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        self.body = {**self.body, "metadata": meta}

    def where(self) -> str:
        return f"{self.file}: document {self.document}" if self.file else "a generator"


def find_by_any_id(resources: Iterable[Resource], wanted: ResId) -> list[Resource]:
    """Objects that have or had the id `wanted` (GetMatchingResourcesByAnyId)."""
    key = wanted.key
    return [r for r in resources if any(i.key == key for i in r.ids())]


def select(resources: Iterable[Resource], target: Target) -> list[Resource]:
    """Objects a patch target selects: name and namespace by original or current id."""
    return [r for r in resources
            if target.selects(r.id, r.original, r.labels(), r.annotations())]


def duplicate_of(index: Mapping[tuple[str, str, str, str], Resource], res: Resource) -> Resource | None:
    return index.get(res.id.key)
