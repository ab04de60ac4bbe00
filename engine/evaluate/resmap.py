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
    """Whether the build works on its contents: the caller's `keep` said so, or a generator
    made it (its name hash needs them). Output is filtered by `keep` again at the end."""
    needs_hash: bool = False
    """A generated ConfigMap or Secret whose name takes the hash of its contents at the end."""
    previous: list[ResId] = field(default_factory=list)
    """Earlier ids, oldest first; each has the effective namespace, as kustomize stores it."""
    prefixes: list[str] = field(default_factory=list)
    suffixes: list[str] = field(default_factory=list)
    """The name affixes transformers added, in order (name references compare them)."""

    _id: tuple[Mapping[str, Any], ResId] | None = field(default=None, init=False, repr=False)

    @property
    def id(self) -> ResId:
        """The current id (kept while the body is the same object: bodies are replaced, never
        changed in place)."""
        if self._id is None or self._id[0] is not self.body:
            self._id = (self.body, res_id(self.body))
        return self._id[1]

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
        return f"{self.file}: document {self.document}" if self.document else (self.file or "a generator")


def find_by_any_id(resources: Iterable[Resource], wanted: ResId) -> list[Resource]:
    """Objects that have or had the id `wanted` (GetMatchingResourcesByAnyId)."""
    key = wanted.key
    return [r for r in resources if any(i.key == key for i in r.ids())]


def select(resources: Iterable[Resource], target: Target) -> list[Resource]:
    """Objects a patch target selects: name and namespace by original or current id."""
    return [r for r in resources
            if target.selects(r.id, r.original, r.labels(), r.annotations())]


def objects_of(value: Any) -> tuple[list[dict[str, Any]], str]:
    """The objects one YAML document holds as kustomize reads them (`*List` kinds with items
    expanded, recursively), or a reason it refuses the document."""
    if value is None or value == {}:
        return [], ""
    if not isinstance(value, dict):
        return [], "not a Kubernetes object (kustomize: missing Resource metadata)"
    kind = value.get("kind")
    if kind in (None, ""):
        return [], "missing kind"
    listing = isinstance(kind, str) and kind.endswith("List")
    if listing and "items" in value:
        items = value["items"]
        if items is None:
            return [], ""
        if not isinstance(items, list):
            return [], f"{kind}.items must be a list"
        found: list[dict[str, Any]] = []
        for item in items:
            more, reason = objects_of(item) if isinstance(item, dict) else ([], "a list item is not an object")
            if reason:
                return [], f"{kind}.items: {reason}"
            found.extend(more)
        return found, ""
    meta = value.get("metadata")
    if not listing and (meta.get("name") if isinstance(meta, dict) else None) in (None, ""):
        return [], "missing metadata.name"
    return [value], ""
