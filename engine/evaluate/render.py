"""What a Flux Kustomization renders to, from files already read.

kustomize-controller builds `spec.path` with kustomize. Where the path holds no kustomization
file it first generates one: every `.yaml`/`.yml` file below the path in lexical walk order,
a sub-directory holding its own kustomization counted as one resource and not entered, every
file decoded as Kubernetes objects (a YAML file that is not fails the build). The Kustomization's
`targetNamespace`, `namePrefix`/`nameSuffix`, `patches`, `images` and `components` are written
into that kustomization. What Flux does after the build (variables, labels) is in
engine/evaluate/postbuild.py.

gitward does the same, but renders a tree that needs no kustomize feature in Python: when no
directory has a kustomization file and no overlay needs kustomize, the objects are the plain
files' documents, in file order (kustomize-controller builds with FIFO order). Everything else
goes to the real kustomize (engine/observe/kustomize.py) with the kustomization written here.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from engine.errors import Problem, Problems, Severity, SourcePos
from engine.evaluate import kubeyaml
from engine.model import Kustomization, Manifest, Patch
from engine.rules.yamldoc import YamlSyntaxError, compose_all

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
"""The names kustomize recognises, in the order it looks for them."""

MANIFEST_SUFFIXES = (".yaml", ".yml")
KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
OWNER_GROUP = "kustomize.toolkit.fluxcd.io"
SUBSTITUTE_KEY = "kustomize.toolkit.fluxcd.io/substitute"
LOCAL_CONFIG = "config.kubernetes.io/local-config"
ORIGIN = "config.kubernetes.io/origin"

Show = Callable[[str], str]
"""Repo-relative path -> the path to print in an error (one the user can open)."""


@dataclass(frozen=True)
class Located:
    """A rendered object and where errors about it point (its document's first line)."""

    manifest: Manifest
    pos: SourcePos
    file: str = ""
    """The repo-relative file the object was read from ("" when not known)."""
    document: int = 0
    """Its document's number in that file (0 when not known)."""


# The generated kustomization -----------------------------------------------------------------


def kustomization_in(files: Collection[str], directory: str) -> str | None:
    """The kustomization file kustomize reads in `directory` (repo-relative), if it has one."""
    for name in KUSTOMIZATION_FILES:
        candidate = posixpath.join(directory, name) if directory else name
        if candidate in files:
            return candidate
    return None


def generated_resources(files: Sequence[str], path: str) -> list[str]:
    """Flux's generated `resources` for `path` (which has no kustomization file), repo-relative.

    `files` are every file that counts, in walk order (lexical, depth first). A directory
    below `path` holding a kustomization file is one entry, at its place in the walk.
    """
    prefix = f"{path}/" if path else ""
    kustomized = {posixpath.dirname(f) for f in files if posixpath.basename(f) in KUSTOMIZATION_FILES}
    entries: list[str] = []
    for rel in files:
        if not rel.startswith(prefix):
            continue
        directory = path
        owner = None
        for part in rel[len(prefix):].split("/")[:-1]:
            directory = f"{directory}/{part}" if directory else part
            if directory in kustomized:
                owner = directory
                break
        if owner is not None:
            if not entries or entries[-1] != owner:
                entries.append(owner)
        elif rel.endswith(MANIFEST_SUFFIXES):
            entries.append(rel)
    return entries


def needs_kustomize(ks: Kustomization) -> bool:
    """Whether an overlay is one Flux applies through kustomize (so gitward must too)."""
    return bool(ks.target_namespace or ks.name_prefix or ks.name_suffix or ks.patches
                or ks.images or ks.components)


def _patch(patch: Patch) -> dict[str, object]:
    entry: dict[str, object] = {"patch": patch.patch}
    if patch.target is not None:
        t = patch.target
        fields = (("group", t.group), ("version", t.version), ("kind", t.kind), ("name", t.name),
                  ("namespace", t.namespace), ("labelSelector", t.label_selector),
                  ("annotationSelector", t.annotation_selector))
        entry["target"] = {k: v for k, v in fields if v}
    return entry


def flux_kustomization(existing: Mapping[str, object] | None, resources: Sequence[str],
                       ks: Kustomization) -> dict[str, object]:
    """The kustomization kustomize-controller builds: the user's (or a generated one listing
    `resources`, relative to the path) with the Kustomization's overlays written in."""
    if existing is None:
        kus: dict[str, object] = {"apiVersion": KUSTOMIZE_API, "kind": "Kustomization"}
        if resources:
            kus["resources"] = list(resources)
    else:
        kus = dict(existing)
    if ks.target_namespace:
        kus["namespace"] = ks.target_namespace
    if ks.name_prefix:
        kus["namePrefix"] = ks.name_prefix
    if ks.name_suffix:
        kus["nameSuffix"] = ks.name_suffix
    if ks.components:
        kus["components"] = [*_as_list(kus.get("components")), *ks.components]
    if ks.patches:
        kus["patches"] = [*_as_list(kus.get("patches")), *(_patch(p) for p in ks.patches)]
    if ks.images:
        images = list(_as_list(kus.get("images")))
        for image in ks.images:
            entry = {k: v for k, v in (("name", image.name), ("newName", image.new_name),
                                       ("newTag", image.new_tag), ("digest", image.digest)) if v}
            names = [i.get("name") if isinstance(i, dict) else None for i in images]
            if image.name in names:
                images[names.index(image.name)] = entry
            else:
                images.append(entry)
        kus["images"] = images
    return kus


def _as_list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def with_build_options(kus: Mapping[str, object]) -> tuple[dict[str, object], bool]:
    """The kustomization as gitward runs it: FIFO order (kustomize-controller passes no
    reorder option, so kustomize keeps resource order) and kustomize's origin annotations, so
    every built object names its file. Returns whether the origins are gitward's addition."""
    out = dict(kus)
    if "sortOptions" not in out:
        out["sortOptions"] = {"order": "fifo"}
    metadata = _as_list(out.get("buildMetadata"))
    if "originAnnotations" in metadata:
        return out, False
    out["buildMetadata"] = [*metadata, "originAnnotations"]
    return out, True


def dump_kustomization(kus: Mapping[str, object]) -> str:
    return kubeyaml.dump(dict(kus))


def read_kustomization(path: str, text: str) -> dict[str, object]:
    """A user's kustomization file as kustomize-controller reads it (sigs.k8s.io/yaml)."""
    docs = kubeyaml.read_documents(path, text, v2=True)
    if len(docs) != 1 or not isinstance(docs[0].value, dict):
        raise YamlSyntaxError(Problem(Severity.ERROR, "a kustomization file holds one mapping",
                                      SourcePos(path, syntax="flux")))
    return docs[0].value


# Objects from YAML ----------------------------------------------------------------------------


def _kind_of(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a scalar"


def _string(meta: Mapping[str, object], key: str) -> str:
    value = meta.get(key)
    return value if isinstance(value, str) else ""


def read_objects(value: object, where: str, pos: SourcePos, problems: Problems) -> list[dict[str, Any]]:
    """The Kubernetes objects one document holds (a `*List` holds several), as kustomize takes them."""
    if value in ({}, [], None):
        return []
    if not isinstance(value, dict):
        problems.error(f"{where}: not a Kubernetes object: {_kind_of(value)}, expected a mapping "
                       "with apiVersion, kind and metadata", pos)
        return []
    meta = value.get("metadata")
    if not any(value.get(k) not in (None, "", {}) for k in ("apiVersion", "kind", "metadata")):
        problems.error(f"{where}: not a Kubernetes object: no apiVersion, kind or metadata", pos)
        return []
    kind = value.get("kind")
    if not isinstance(kind, str) or not kind:
        problems.error(f"{where}: missing kind", pos)
        return []
    if kind.endswith("List"):
        items = value.get("items")
        if items is None:
            return []
        if not isinstance(items, list):
            problems.error(f"{where}: expected a list in {kind}.items, got {_kind_of(items)}", pos)
            return []
        found: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            found.extend(read_objects(item, f"{where}: {kind}.items[{i}]", pos, problems))
        return found
    if meta is not None and not isinstance(meta, dict):
        problems.error(f"{where}: metadata must be a mapping, got {_kind_of(meta)}", pos)
        return []
    meta = meta or {}
    if not _string(meta, "name"):
        problems.error(f"{where}: missing metadata.name (a string)", pos)
        return []
    if not isinstance(value.get("apiVersion"), str) or not value["apiVersion"]:
        problems.error(f"{where}: missing apiVersion", pos)
        return []
    for key in ("labels", "annotations"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            problems.error(f"{where}: metadata.{key} must be a mapping", pos)
            return []
    annotations = meta.get("annotations") or {}
    if LOCAL_CONFIG in annotations and annotations[LOCAL_CONFIG] != "false":
        return []
    return [value]


def read_manifests(rel: str, shown: str, text: str, problems: Problems) -> list[Located]:
    """The objects of one plain manifest file, read as kustomize reads it.

    Origins are `rel: document N` (repo-relative); problems point at `shown`.
    """
    try:
        docs = kubeyaml.read_documents(shown, text)
    except YamlSyntaxError as err:
        problems.extend([err.problem])
        return []
    found: list[Located] = []
    for doc in docs:
        pos = SourcePos(shown, doc.line, 1, syntax="flux")
        origin = f"{rel}: document {doc.number}"
        for body in read_objects(doc.value, f"document {doc.number}", pos, problems):
            found.append(Located(Manifest(body, origin), pos, rel, doc.number))
    return found


@dataclass(frozen=True)
class DocumentIndex:
    """Where each object of a file starts: (kind, name) -> (document number, line)."""

    entries: Mapping[tuple[str, str], tuple[int, int]]

    def find(self, kind: str, name: str) -> tuple[int, int] | None:
        hit = self.entries.get((kind, name))
        if hit is not None:
            return hit
        same_kind = [v for (k, _), v in self.entries.items() if k == kind]
        return same_kind[0] if len(same_kind) == 1 else None


def indexes_of(items: Sequence[Located]) -> dict[str, DocumentIndex]:
    """Document indexes of the files these objects were read from, without reading them again."""
    entries: dict[str, dict[tuple[str, str], tuple[int, int]]] = {}
    for item in items:
        if item.file:
            key = (item.manifest.kind, item.manifest.name)
            entries.setdefault(item.file, {}).setdefault(key, (item.document, item.pos.line))
    return {name: DocumentIndex(found) for name, found in entries.items()}


def document_index(text: str) -> DocumentIndex:
    """A cheap index of a manifest file (composed, not constructed), for origins of built objects."""
    entries: dict[tuple[str, str], tuple[int, int]] = {}
    try:
        for number, node in enumerate(compose_all(text), start=1):
            if not isinstance(node, yaml.MappingNode):
                continue
            fields = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
            kind, meta = fields.get("kind"), fields.get("metadata")
            name = None
            if isinstance(meta, yaml.MappingNode):
                name = next((v for k, v in meta.value if isinstance(k, yaml.ScalarNode)
                             and k.value == "name"), None)
            if isinstance(kind, yaml.ScalarNode) and isinstance(name, yaml.ScalarNode):
                entries.setdefault((kind.value, name.value), (number, node.start_mark.line + 1))
    except (yaml.YAMLError, RecursionError):
        pass
    return DocumentIndex(entries)


def built_origin(annotation: object, base: str) -> tuple[str, str]:
    """(repo-relative file, description) from kustomize's origin annotation of a built object."""
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(annotation, Loader=loader) if isinstance(annotation, str) else None
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        return "", ""
    if isinstance(data.get("path"), str):
        if data.get("repo"):
            return "", f"{data['repo']}: {data['path']}"
        rel = posixpath.normpath(posixpath.join(base, data["path"]))
        return rel, rel
    if isinstance(data.get("configuredIn"), str):
        rel = posixpath.normpath(posixpath.join(base, data["configuredIn"]))
        by = data.get("configuredBy")
        kind = by.get("kind") if isinstance(by, dict) else None
        return rel, f"{rel}: {kind}" if kind else rel
    return "", ""


def read_built(text: str, base: str, output: str, problems: Problems, *, strip_origin: bool,
               show: Show, index: Callable[[str], DocumentIndex | None]) -> list[Located]:
    """The objects kustomize built for the directory `base` (repo-relative), read as Flux reads
    them; each named by its origin annotation (`file: document N` when `index` knows it)."""
    try:
        docs = kubeyaml.read_documents(output, text, v2=True)
    except YamlSyntaxError as err:
        problems.extend([err.problem])
        return []
    found: list[Located] = []
    for doc in docs:
        fallback = SourcePos(output, syntax="flux")
        for body in read_objects(doc.value, f"object {doc.number}", fallback, problems):
            meta = body.get("metadata") or {}
            annotations = meta.get("annotations") or {}
            rel, origin = built_origin(annotations.get(ORIGIN), base)
            if strip_origin and ORIGIN in annotations:
                body = _without_origin(body)
            pos = SourcePos(show(rel), syntax="flux") if rel else fallback
            found_in = index(rel) if rel else None
            hit = found_in.find(str(body.get("kind")), _string(meta, "name")) if found_in else None
            document = 0
            if hit is not None and origin == rel:
                origin, document = f"{rel}: document {hit[0]}", hit[0]
                pos = SourcePos(show(rel), hit[1], 1, syntax="flux")
            manifest = Manifest(body, origin or f"{base or '.'}: object {doc.number}")
            found.append(Located(manifest, pos, rel, document))
    return found


def _without_origin(body: dict[str, Any]) -> dict[str, Any]:
    meta = dict(body["metadata"])
    annotations = {k: v for k, v in meta["annotations"].items() if k != ORIGIN}
    if annotations:
        meta["annotations"] = annotations
    else:
        del meta["annotations"]
    return {**body, "metadata": meta}
