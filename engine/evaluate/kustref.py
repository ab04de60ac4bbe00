"""Name references from a kustomization's `configurations`, as kustomize fixes them.

When kustomize renames an object (a prefix, a suffix, a generated ConfigMap's hash), it
rewrites the fields that name it in other objects, wherever its `nameReference` configuration
says names live. The built-in configuration only covers built-in kinds, so for Flux objects
only the user's `configurations` files matter: the usual one says a HelmRelease's
`spec/valuesFrom/name` names a ConfigMap. This follows kustomize v5's rules (its
api/filters/nameref): a field holding the referral's earlier name is rewritten to its current
one, among candidates that had that name and kind, in the referrer's namespace (cluster-scoped
and ServiceAccount candidates always qualify), preferring the candidates renamed by the same
affixes as the referrer. Other sections of a configuration file (label, image or namespace
field specs, var references) are warnings: only the real kustomize applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import Problems, SourcePos
from engine.evaluate import kubeyaml
from engine.evaluate.kustfile import NEEDS_KUSTOMIZE, KustFile, Tree, reach
from engine.evaluate.resid import ResId
from engine.evaluate.resmap import Resource
from engine.rules.yamldoc import YamlSyntaxError

_ESCAPED_SLASH = "\\/"


class NameReferenceError(ValueError):
    """A name reference kustomize cannot resolve."""


@dataclass(frozen=True)
class Gvk:
    group: str = ""
    version: str = ""
    kind: str = ""

    def selects(self, rid: ResId) -> bool:
        """kustomize's IsSelected: each field given must match."""
        return ((not self.group or rid.group == self.group) and (not self.version or rid.version == self.version)
                and (not self.kind or rid.kind == self.kind))

    @staticmethod
    def of(fields: Mapping[str, Any]) -> Gvk:
        return Gvk(*(str(fields.get(k) or "") for k in ("group", "version", "kind")))


@dataclass(frozen=True)
class NameReference:
    """Objects of kind `referral` are named at `paths` of objects their `Gvk` selects."""

    referral: Gvk
    referrers: tuple[tuple[Gvk, tuple[str, ...]], ...]


def _path(text: str) -> tuple[str, ...]:
    """A field spec path: `/`-separated, `\\/` a slash in a key, a `[]` suffix ignored."""
    parts = text.replace(_ESCAPED_SLASH, "\0").split("/")
    return tuple(p.replace("\0", "/").removesuffix("[]") for p in parts)


def read_configurations(tree: Tree, kust: KustFile, problems: Problems) -> list[NameReference]:
    """The name references of a kustomization's `configurations` files; other sections warn."""
    found: list[NameReference] = []
    for entry, pos in kust.located("configurations"):
        rel, why = reach(tree, kust.directory, entry)
        text = tree.text(rel, problems) if rel is not None and tree.is_file(rel) else None
        if text is None:
            problems.error(f"configurations: {why or f'{entry!r} is not a file in the repository'}", pos)
            continue
        try:
            docs = kubeyaml.read_documents(tree.display(rel or ""), text, v2=True)
        except YamlSyntaxError as err:
            problems.extend([err.problem])
            continue
        config = docs[0].value if docs and isinstance(docs[0].value, dict) else {}
        for section, value in config.items():
            if section != "nameReference":
                if value:
                    problems.warning(f"configurations: {entry}: {section} {NEEDS_KUSTOMIZE}", pos)
                continue
            for item in value if isinstance(value, list) else []:
                if not isinstance(item, dict):
                    continue
                specs = [s for s in item.get("fieldSpecs") or [] if isinstance(s, dict) and s.get("path")]
                found.append(NameReference(Gvk.of(item), tuple((Gvk.of(s), _path(str(s["path"])))
                                                                for s in specs)))
    return found


def _same_ending(a: list[str], b: list[str]) -> bool:
    shorter, longer = (a, b) if len(a) <= len(b) else (b, a)
    if not shorter:
        return not longer
    return longer[len(longer) - len(shorter):] == shorter


class _Fixer:
    """The rewrites of one referrer for one referral kind."""

    def __init__(self, referrer: Resource, referral: Gvk, candidates: list[Resource]) -> None:
        self.referrer, self.referral, self.candidates = referrer, referral, candidates

    def select(self, old: str, candidates: list[Resource],
               same: Callable[[list[Resource]], bool]) -> Resource | None:
        """kustomize's selectReferral: the one candidate that had the name `old`; None when
        none did; an error when several differ (`same` says when several are one)."""
        found = [c for c in candidates
                 if any(p.name == old and self.referral.selects(ResId(c.id.api_version, p.kind, p.name))
                        for p in c.previous)]
        mine = self.referrer.id
        if not mine.cluster_scoped:
            found = [c for c in found if c.id.cluster_scoped or c.id.kind == "ServiceAccount"
                     or c.id.effective_namespace == mine.effective_namespace]
        if len(found) == 1:
            return found[0]
        found = [c for c in found if _same_ending(c.prefixes, self.referrer.prefixes)
                 and _same_ending(c.suffixes, self.referrer.suffixes)]
        if len(found) == 1 or (found and same(found)):
            return found[0]
        if found:
            raise NameReferenceError("found multiple possible referrals: " + ", ".join(str(c.id) for c in found))
        return None

    def scalar(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        referral = self.select(value, self.candidates, lambda cs: len({c.id.name for c in cs}) == 1)
        return referral.id.name if referral is not None else value

    def mapping(self, node: dict[str, Any]) -> dict[str, Any]:
        if "name" not in node:
            raise NameReferenceError("path config error; no 'name' field in node")
        candidates = self.candidates
        if "namespace" in node:
            ns = node["namespace"]
            candidates = ([c for c in self.candidates if c.original.namespace == ns]
                          or [c for c in self.candidates if c.id.namespace == ns])
        referral = self.select(str(node["name"]), candidates,
                               lambda cs: len({(c.id.name, c.id.namespace) for c in cs}) == 1)
        if referral is None or (referral.id.name == node["name"] and not referral.id.namespace):
            return node
        out = {**node, "name": referral.id.name}
        if referral.id.namespace:
            out["namespace"] = referral.id.namespace
        return out

    def value(self, node: Any) -> Any:
        if isinstance(node, dict):
            return self.mapping(node)
        if isinstance(node, list):
            items = [self.mapping(i) if isinstance(i, dict) else self.scalar(i) for i in node]
            return node if all(a is b for a, b in zip(items, node)) else items
        return self.scalar(node)

    def walk(self, node: Any, path: tuple[str, ...]) -> Any:
        """The node with the names at `path` fixed (lists apply the path to each item)."""
        if not path:
            return node if node is None else self.value(node)
        if node is None:
            return node
        if isinstance(node, list):
            items = [self.walk(item, path) for item in node]
            return node if all(a is b for a, b in zip(items, node)) else items
        if not isinstance(node, dict):
            raise NameReferenceError("expected sequence or mapping node")
        if path[0] not in node:
            return node
        new = self.walk(node[path[0]], path[1:])
        return node if new is node[path[0]] else {**node, path[0]: new}


def fix_references(resources: list[Resource], references: list[NameReference], problems: Problems,
                   place: Callable[[Resource], SourcePos]) -> None:
    """kustomize's FixBackReferences for the given name references, on the objects kept."""
    for reference in references:
        for gvk, path in reference.referrers:
            for res in resources:
                if not res.kept or not gvk.selects(res.original):
                    continue
                mine = res.id
                candidates = resources if mine.cluster_scoped else [
                    c for c in resources
                    if c.id.cluster_scoped or c.id.effective_namespace == mine.effective_namespace]
                try:
                    res.body = _Fixer(res, reference.referral, candidates).walk(res.body, path)
                except NameReferenceError as err:
                    problems.error(f"name reference at {'/'.join(path)} of {mine} ({res.where()}): {err}",
                                   place(res))
