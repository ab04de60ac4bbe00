"""kustomize's patch transformers: `patchesStrategicMerge`, `patches`, `patchesJson6902`.

How each entry is read and which objects it reaches, as kustomize v5 does it: a patch text is a
strategic-merge patch when it reads as objects and a JSON 6902 patch when it reads as a list of
operations (both or neither is an error); a strategic-merge patch without a target applies to
the one object that has or had its own id, with a target to every object the target selects;
a JSON patch needs a target. After a merge kustomize puts back the object's namespace, and its
name and kind unless `allowNameChange`/`allowKindChange` say otherwise. The merges themselves
are in engine/evaluate/patch.py. Objects the build does not keep are only ever deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.errors import Problems, SourcePos
from engine.evaluate import kubeyaml
from engine.evaluate.kustfile import KustFile, Tree, reach, resolve
from engine.evaluate.patch import Deleted, PatchError, apply_json_patch, merge_object
from engine.evaluate.resid import SelectorError, Target, res_id
from engine.evaluate.resmap import Resource, find_by_any_id, objects_of, select
from engine.rules.yamldoc import YamlSyntaxError

class PatchKind(StrEnum):
    STRATEGIC_MERGE = "strategic merge"
    JSON6902 = "JSON 6902"
    INVALID = "invalid"


@dataclass(frozen=True)
class Parsed:
    """A patch text as kustomize reads it: its objects, its operations, or why neither."""

    kind: PatchKind
    content: Any
    """The objects (strategic merge), the operations (JSON 6902), or the reason (invalid)."""


class Patcher:
    """Applies one kustomization's patch entries; parsed patch texts are kept in `cache`."""

    def __init__(self, tree: Tree, problems: Problems, cache: dict[str, Parsed]) -> None:
        self.tree, self.problems, self.cache = tree, problems, cache

    def patch_text(self, kust: KustFile, entry: Mapping[str, Any], pos: SourcePos, what: str,
                   inline_key: str) -> str | None:
        inline, path = (entry.get(inline_key) or "").strip(), entry.get("path") or ""
        if not inline and not path:
            self.problems.error(f"{what}: must specify one of patch and path", pos)
            return None
        if inline and path:
            self.problems.error(f"{what}: patch and path can't be set at the same time", pos)
            return None
        if inline:
            return str(inline)
        rel, why = reach(self.tree, kust.directory, path)
        text = self.tree.text(rel, self.problems) if rel is not None and self.tree.is_file(rel) else None
        if text is None:
            self.problems.error(f"{what}: failed to get the patch file from path '{path}'"
                                + (f": {why}" if why else ""), pos)
        return text

    def say_syntax(self, kust: KustFile, path: str) -> None:
        """A patch file that is not YAML: its syntax error, located in the file (kustomize only
        says, at the entry, that it could not parse the patch)."""
        rel, _ = resolve(kust.directory, path)
        if rel is None or not self.tree.is_file(rel):
            return
        text = self.tree.text(rel, Problems())
        if text is None:
            return
        try:
            kubeyaml.read_documents(self.tree.display(rel), text)
        except YamlSyntaxError as err:
            self.problems.extend([err.problem])

    def parsed_patch(self, text: str) -> Parsed:
        if text not in self.cache:
            self.cache[text] = _classify_patch(text)
        return self.cache[text]

    def patch_entry(self, kust: KustFile, entry: Mapping[str, Any], pos: SourcePos,
                    resources: list[Resource]) -> None:
        text = self.patch_text(kust, entry, pos, "patches", "patch")
        if text is None:
            return
        parsed = self.parsed_patch(text)
        kind, patch = parsed.kind, parsed.content
        if kind is PatchKind.INVALID:
            self.problems.error(f"patches: {patch}", pos)
            self.say_syntax(kust, entry.get("path") or "")
            return
        try:
            target = Target.of(entry["target"]) if entry.get("target") else None
        except SelectorError as err:
            self.problems.error(f"patches: target: {err}", pos)
            return
        options = entry.get("options") or {}
        if kind is PatchKind.JSON6902:
            if target is None:
                self.problems.error("patches: must specify a target for a JSON patch", pos)
                return
            for res in select(resources, target):
                self.apply_json(res, patch, pos, remember=True)
            return
        if target is None:
            for body in patch:
                self.untargeted(body, resources, pos, "patches", options)
            return
        if len(patch) > 1:
            self.problems.error("patches: several strategic-merge patches in one entry may not "
                                "have a target", pos)
            return
        for res in select(resources, target):
            self.apply_smp(res, patch[0], resources, pos, options)

    def strategic_merge_entry(self, kust: KustFile, entry: object, pos: SourcePos,
                              resources: list[Resource]) -> None:
        """A `patchesStrategicMerge` item: inline objects, else a file holding them."""
        text = entry if isinstance(entry, str) else ""
        parsed = self.parsed_patch(text)
        if parsed.kind is not PatchKind.STRATEGIC_MERGE or not parsed.content:
            rel, why = reach(self.tree, kust.directory, text)
            loaded = self.tree.text(rel, self.problems) if rel is not None and self.tree.is_file(rel) else None
            if loaded is None:
                why = why or f"'{text}' is not a file in the repository"
                self.problems.error(f"patchesStrategicMerge: {why}", pos)
                return
            parsed = self.parsed_patch(loaded)
            if parsed.kind is not PatchKind.STRATEGIC_MERGE:
                why = parsed.content if parsed.kind is PatchKind.INVALID else "not a strategic-merge patch"
                self.problems.error(f"patchesStrategicMerge: {text}: {why}", pos)
                self.say_syntax(kust, text)
                return
        for body in parsed.content:
            self.untargeted(body, resources, pos, "patchesStrategicMerge", {})

    def json6902_entry(self, kust: KustFile, entry: Mapping[str, Any], pos: SourcePos,
                       resources: list[Resource]) -> None:
        target_fields = entry.get("target") or {}
        if not target_fields.get("name"):
            self.problems.error("patchesJson6902: must specify the target name", pos)
            return
        text = self.patch_text(kust, entry, pos, "patchesJson6902", "patch")
        if text is None:
            return
        parsed = self.parsed_patch(text)
        if parsed.kind is not PatchKind.JSON6902 or not parsed.content:
            reason = parsed.content if parsed.kind is PatchKind.INVALID else f"not a JSON patch: {text!r}"
            self.problems.error(f"patchesJson6902: {reason}", pos)
            if parsed.kind is PatchKind.INVALID:
                self.say_syntax(kust, entry.get("path") or "")
            return
        try:
            target = Target.of(target_fields)
        except SelectorError as err:
            self.problems.error(f"patchesJson6902: target: {err}", pos)
            return
        for res in select(resources, target):
            self.apply_json(res, parsed.content, pos, remember=False)

    def untargeted(self, patch: Mapping[str, Any], resources: list[Resource], pos: SourcePos,
                   what: str, options: Mapping[str, Any]) -> None:
        """A strategic-merge patch without a target: it applies to the one object that has or
        had the patch's own id."""
        wanted = res_id(patch)
        found = find_by_any_id(resources, wanted)
        if len(found) != 1:
            many = "multiple matches" if found else "no matches"
            self.problems.error(f"{what}: no resource matches strategic merge patch {wanted} "
                                f"({many} for its id)", pos)
            return
        self.apply_smp(found[0], patch, resources, pos, options)

    def apply_smp(self, res: Resource, patch: Mapping[str, Any], resources: list[Resource],
                  pos: SourcePos, options: Mapping[str, Any]) -> None:
        if not res.kept:
            if patch.get("$patch") == "delete":
                resources.remove(res)
            return
        meta = res.metadata()
        kind, name, namespace = res.body.get("kind"), meta.get("name"), meta.get("namespace")
        rename, rekind = bool(options.get("allowNameChange")), bool(options.get("allowKindChange"))
        if rename or rekind:
            res.remember_id()
        api = res.body.get("apiVersion")
        # kustomize gives the patch the target's apiVersion before merging
        patch = {k: v for k, v in patch.items() if k != "apiVersion"}
        if api is not None:
            patch["apiVersion"] = api
        try:
            merged = merge_object(res.body, patch)
        except PatchError as err:
            self.problems.error(f"{err} (patching {res.id}, {res.where()})", pos)
            return
        if isinstance(merged, Deleted):
            resources.remove(res)
            return
        res.body = merged
        restore: dict[str, Any] = {"namespace": namespace}
        if not rename:
            restore["name"] = name
        res.with_metadata(**restore)
        if not rekind:
            res.body = {**res.body, "kind": kind}

    def apply_json(self, res: Resource, operations: list[Any], pos: SourcePos, *, remember: bool) -> None:
        """A JSON patch on one object; `patches` (not `patchesJson6902`) remembers the id."""
        if not res.kept:
            return
        previous = list(res.previous)
        if remember:
            res.remember_id()
        body = res.body
        if res.previous and res.metadata().get("annotations") is None:
            # kustomize keeps previous ids as annotations, so the map exists under the patch
            body = {**body, "metadata": {**res.metadata(), "annotations": {}}}
        try:
            body = apply_json_patch(body, operations)
        except PatchError as err:
            res.previous = previous
            self.problems.error(f"{err} (patching {res.id}, {res.where()})", pos)
            return
        res.body = body


def _classify_patch(text: str) -> Parsed:
    """kustomize's test: strategic merge when the text reads as objects, JSON 6902 when it
    reads as a list of operations; both or neither is an error."""
    objects: list[dict[str, Any]] | None = _patch_objects(text)
    operations: list[Any] | None
    try:
        if text.startswith("["):
            loaded = json.loads(text, parse_float=_json_number)
        else:
            docs = kubeyaml.read_documents("patch", text, v2=True)
            loaded = docs[0].value if docs and docs[0].number == 1 else None
        operations = [] if loaded is None else loaded if isinstance(loaded, list) else None
    except (ValueError, YamlSyntaxError):
        operations = None
    if objects is not None and operations is not None:
        return Parsed(PatchKind.INVALID, f"illegally qualifies as both an SM and JSON patch: {text!r}")
    if objects is not None:
        return Parsed(PatchKind.STRATEGIC_MERGE, objects)
    if operations is not None:
        return Parsed(PatchKind.JSON6902, operations)
    return Parsed(PatchKind.INVALID, f"unable to parse SM or JSON patch from {text!r}")


def _patch_objects(text: str) -> list[dict[str, Any]] | None:
    """The objects of a strategic-merge patch, or None when the text is not objects."""
    objects: list[dict[str, Any]] = []
    try:
        docs = kubeyaml.read_documents("patch", text)
    except YamlSyntaxError:
        return None
    for doc in docs:
        if isinstance(doc.value, list) and not doc.value:
            continue
        found, reason = objects_of(doc.value)
        if reason:
            return None
        objects.extend(found)
    return objects


def _json_number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**63 else value

