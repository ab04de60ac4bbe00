"""kustomize's builtin transformers that discovery needs, with kustomize v5's semantics.

Each works on the objects of a build in place (engine/evaluate/resmap.py) and returns the
messages kustomize would fail with. Only what can reach a Flux object or an object's identity
is done: `metadata.namespace` (never on a cluster-scoped kind; a Namespace is renamed to the
namespace), `metadata.name` affixes (never on a CustomResourceDefinition, an APIService or a
Namespace), `metadata.labels` and `metadata.annotations`, `replicas` (which never touches a
Flux kind but fails the build when it matches nothing), and `images`, which rewrites `image`
in every `containers`/`initContainers` list at any depth of any kind but a
CustomResourceDefinition, then once more on the usual pod paths (so a `tagSuffix` lands twice
there, as with kustomize). Selectors, templates and cross-references of built-in kinds are
kustomize's business and are not reproduced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from engine.evaluate.resid import ResId
from engine.evaluate.resmap import Resource
from engine.rules.regex import PatternError, compile_pattern, utf8

_AFFIX_SKIPPED = (("", "CustomResourceDefinition"), ("apiregistration.k8s.io", "APIService"),
                  ("", "Namespace"))
_REPLICA_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController")
_IMAGE_PATHS = (("spec", "containers"), ("spec", "initContainers"),
                ("spec", "template", "spec", "containers"),
                ("spec", "template", "spec", "initContainers"))


def set_namespace(resources: list[Resource], namespace: str) -> list[str]:
    """The NamespaceTransformer: every namespaced object moves to `namespace`."""
    if not namespace:
        return []
    counts = Counter(r.id.key for r in resources)
    errors: list[str] = []
    for res in resources:
        before = res.id.key
        res.remember_id()
        changes: dict[str, Any] = {}
        if not res.id.cluster_scoped:
            changes["namespace"] = namespace
        if res.id.kind == "Namespace":
            changes["name"] = namespace
        if changes:
            res.with_metadata(**changes)
        after = res.id.key
        counts[before] -= 1
        counts[after] += 1
        if counts[after] > 1:
            errors.append(f"namespace transformation produces ID conflict: {res.id} "
                          f"({res.where()}) is already in the build")
    return errors


def _selected(original: ResId, group: str, kind: str) -> bool:
    return (not group or original.group == group) and original.kind == kind


def add_affixes(resources: list[Resource], prefix: str, suffix: str) -> None:
    """The PrefixSuffixTransformer on `metadata.name`."""
    if not prefix and not suffix:
        return
    for res in resources:
        original = res.original
        if any(_selected(original, group, kind) for group, kind in _AFFIX_SKIPPED):
            continue
        res.remember_id()
        res.with_metadata(name=f"{prefix}{res.id.name}{suffix}")


def add_metadata(resources: list[Resource], field: str, values: Mapping[str, str]) -> list[str]:
    """The LabelTransformer or AnnotationsTransformer on `metadata.labels`/`.annotations`."""
    if not values:
        return []
    errors: list[str] = []
    for res in resources:
        current = res.metadata().get(field)
        if current is not None and not isinstance(current, dict):
            errors.append(f"{res.id} ({res.where()}): metadata.{field} is not a mapping")
            continue
        res.with_metadata(**{field: {**(current or {}), **values}})
    return errors


def set_replicas(resources: list[Resource], name: str, count: int) -> list[str]:
    """The ReplicaCountTransformer: `spec.replicas` of workloads named `name` (by any id)."""
    matched = [r for r in resources
               if any(i.name == name and i.kind in _REPLICA_KINDS for i in r.ids())]
    if not matched:
        kinds = " ".join(f"{k}.[noVer].[noGrp]" for k in _REPLICA_KINDS)
        return [f"resource with name {name} does not match a config with the following GVK [{kinds}]"]
    for res in matched:
        if res.kept:
            spec = res.body.get("spec")
            res.body = {**res.body, "spec": {**(spec if isinstance(spec, dict) else {}), "replicas": count}}
    return []


# images ------------------------------------------------------------------------------------------


class ImageError(ValueError):
    pass


def _split_image(image: str) -> tuple[str, str, str]:
    """(name, tag, digest) of an image reference, as kustomize splits it."""
    slash = image.find("/")
    search, offset = (image[slash:], slash) if slash > 0 else (image, 0)
    at, colon = search.find("@"), search.find(":")
    if colon < 0 and at < 0:
        return image, "", ""
    if at >= 0 and (at < colon or colon < 0):
        return image[:at + offset], "", image[at + offset + 1:]
    if at >= 0:
        return image[:colon + offset], image[colon + offset + 1:at + offset], image[at + offset + 1:]
    return image[:colon + offset], image[colon + offset + 1:], ""


class ImageRule:
    """One `images` entry: which references it matches and what it makes of them."""

    def __init__(self, entry: Mapping[str, Any]) -> None:
        self.name = str(entry.get("name") or "")
        self.new_name = str(entry.get("newName") or "")
        self.new_tag = str(entry.get("newTag") or "")
        self.digest = str(entry.get("digest") or "")
        self.tag_suffix = str(entry.get("tagSuffix") or "")
        try:
            self.pattern = compile_pattern(
                f"^{self.name}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$")
        except PatternError as err:
            raise ImageError(f"images: invalid image name {self.name!r}: {err.cause}") from None

    def rewrite(self, image: Any) -> Any:
        if not isinstance(image, str) or self.pattern.search(utf8(image)) is None:
            return image
        name, tag, digest = _split_image(image)
        name = self.new_name or name
        if self.new_tag and self.digest:
            tag, digest = self.new_tag, self.digest
        elif self.new_tag:
            tag, digest = self.new_tag, ""
        elif self.digest:
            tag, digest = "", self.digest
        elif self.tag_suffix:
            tag, digest = tag + self.tag_suffix, ""
        return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _rewrite_containers(containers: Any, rule: ImageRule) -> Any:
    """The list with each item's `image` rewritten; the same list when nothing changed."""
    if not isinstance(containers, list):
        return containers
    out: list[Any] | None = None
    for i, item in enumerate(containers):
        if not isinstance(item, dict) or "image" not in item:
            continue
        if isinstance(item["image"], (dict, list)):
            kind = "MappingNode" if isinstance(item["image"], dict) else "SequenceNode"
            raise ImageError(f"wrong node kind: expected ScalarNode but got {kind} for an image")
        new = rule.rewrite(item["image"])
        if new != item["image"]:
            out = list(containers) if out is None else out
            out[i] = {**item, "image": new}
    return containers if out is None else out


def _walk_images(value: Any, rule: ImageRule) -> Any:
    """Every `containers`/`initContainers` list at any depth (kustomize's legacy walk); the
    same object when nothing changed."""
    if isinstance(value, dict):
        out: dict[str, Any] | None = None
        for key, item in value.items():
            new = _walk_images(item, rule)
            if key in ("containers", "initContainers"):
                new = _rewrite_containers(new, rule)
            if new is not item:
                out = dict(value) if out is None else out
                out[key] = new
        return value if out is None else out
    if isinstance(value, list):
        items = [_walk_images(item, rule) for item in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    return value


def _at_path(value: Any, path: tuple[str, ...], rule: ImageRule) -> Any:
    if not isinstance(value, dict) or path[0] not in value:
        return value
    item = value[path[0]]
    new = _rewrite_containers(item, rule) if len(path) == 1 else _at_path(item, path[1:], rule)
    return value if new is item else {**value, path[0]: new}


def set_images(resources: list[Resource], rule: ImageRule) -> list[str]:
    """The ImageTagTransformer for one `images` entry, on the objects the build keeps."""
    errors: list[str] = []
    for res in resources:
        if not res.kept:
            continue
        try:
            body: Any = res.body
            if res.id.kind != "CustomResourceDefinition":
                body = _walk_images(body, rule)
            for path in _IMAGE_PATHS:
                body = _at_path(body, path, rule)
        except ImageError as err:
            errors.append(f"{res.id} ({res.where()}): {err}")
            continue
        res.body = body
    return errors

