"""A kustomization file as kustomize reads it: strict fields, located values.

kustomize decodes a kustomization through JSON with unknown fields refused (Go's decoder, so
field names match case-insensitively) and every value of the declared Go type; only the first
YAML document counts, read as sigs.k8s.io/yaml reads (`yes` is a boolean). `bases` joins
`resources` and `imageTags` joins `images`. Every value keeps the place it was written, so an
error about `resources[2]` points at that line.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import yaml

from engine.errors import Problems, SourcePos
from engine.evaluate import kubeyaml
from engine.evaluate.render import KUSTOMIZATION_FILES
from engine.rules.yamldoc import YamlSyntaxError

NEEDS_KUSTOMIZE = "cannot be applied without kustomize (install kubectl or kustomize)"
"""How every warning about something only the real kustomize does ends its first clause."""
KUSTOMIZATION_API = "kustomize.config.k8s.io/v1beta1"
COMPONENT_API = "kustomize.config.k8s.io/v1alpha1"
REMOTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git@|git::|(?:github|gitlab|bitbucket)\.(?:com|org)/)"
                    r"|\?(?:ref|version|timeout|submodules)=")
"""A remote resource (a URL or a git reference): fetched by kustomize, never read from the tree."""


class Tree(Protocol):
    """The files a build may read (engine/rules/tree.py RepoTree satisfies it)."""

    def is_file(self, rel: str) -> bool: ...

    def is_dir(self, rel: str) -> bool: ...

    def text(self, rel: str, problems: Problems | None = None) -> str | None: ...

    def data(self, rel: str) -> bytes | None: ...

    def display(self, rel: str) -> str: ...

    def refusal(self, rel: str) -> str | None:
        """Why `rel` is refused (a symbolic link that loops or leaves the repository), or None."""
        ...


def resolve(directory: str, entry: object) -> tuple[str | None, str]:
    """(repo-relative path, "") for a path written in a kustomization of `directory`, or
    (None, why not): it must be a non-empty relative path that stays in the repository."""
    if not isinstance(entry, str) or not entry:
        return None, "an empty path"
    if entry.startswith("/"):
        return None, f"'{entry}' is an absolute path: the repository is all a build may read"
    rel = posixpath.normpath(posixpath.join(directory, entry))
    if rel == ".":
        return "", ""
    if rel == ".." or rel.startswith("../"):
        return None, f"'{entry}' is outside the repository"
    return rel, ""


def reach(tree: Tree, directory: str, entry: object) -> tuple[str | None, str]:
    """`resolve`, and then the file system's word: a path that is a refused symbolic link (one
    that loops or resolves outside the repository) is (None, why), as Flux's build file system
    is confined to the source's root."""
    rel, why = resolve(directory, entry)
    refusal = tree.refusal(rel) if rel is not None else None
    if refusal is not None:
        return None, f"'{entry}' {refusal}"
    return rel, why


class KustKind(StrEnum):
    KUSTOMIZATION = "Kustomization"
    COMPONENT = "Component"


# The fields of kustomize's types.Kustomization, as shapes: a Go type per field. -----------------

_S, _B, _I, _ANY = "string", "boolean", "integer", "any"
Shape = Any
"""A field's Go type: _S, _B, _I, _ANY, ("list", shape), ("map", shape) or {field: shape}."""


def _list(shape: Shape) -> Shape:
    return ("list", shape)


def _map(shape: Shape) -> Shape:
    return ("map", shape)


_SELECTOR = {"group": _S, "version": _S, "kind": _S, "name": _S, "namespace": _S,
             "labelSelector": _S, "annotationSelector": _S}
_PATCH = {"path": _S, "patch": _S, "target": _SELECTOR, "options": _map(_B)}
_IMAGE = {"name": _S, "newName": _S, "newTag": _S, "digest": _S, "tagSuffix": _S}
_OPTIONS = {"labels": _map(_S), "annotations": _map(_S), "disableNameSuffixHash": _B,
            "immutable": _B}
_GENERATOR = {"name": _S, "namespace": _S, "behavior": _S, "files": _list(_S),
              "literals": _list(_S), "envs": _list(_S), "env": _S, "options": _OPTIONS}
_FIELD_SPEC = {"group": _S, "version": _S, "kind": _S, "path": _S, "create": _B}
FIELDS: dict[str, Shape] = {
    "apiVersion": _S, "kind": _S, "metadata": _ANY, "openapi": _map(_S),
    "namePrefix": _S, "nameSuffix": _S, "namespace": _S,
    "commonLabels": _map(_S), "commonAnnotations": _map(_S),
    "labels": _list({"pairs": _map(_S), "includeSelectors": _B, "includeTemplates": _B,
                     "fields": _list(_FIELD_SPEC)}),
    "patchesStrategicMerge": _list(_S), "patchesJson6902": _list(_PATCH), "patches": _list(_PATCH),
    "images": _list(_IMAGE), "imageTags": _list(_IMAGE),
    "replacements": _list(_ANY), "replicas": _list({"name": _S, "count": _I}), "vars": _list(_ANY),
    "sortOptions": _ANY,
    "resources": _list(_S), "components": _list(_S), "crds": _list(_S), "bases": _list(_S),
    "configMapGenerator": _list(_GENERATOR), "secretGenerator": _list({**_GENERATOR, "type": _S}),
    "helmGlobals": _ANY, "helmCharts": _list(_ANY), "helmChartInflationGenerator": _list(_ANY),
    "generatorOptions": _OPTIONS,
    "configurations": _list(_S), "generators": _list(_S), "transformers": _list(_S),
    "validators": _list(_S), "inventory": _ANY, "buildMetadata": _list(_S),
}


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _check(value: Any, shape: Shape, where: str) -> tuple[Any, list[tuple[str, str]]]:
    """The value with Go's field names, and what Go's JSON decoder would refuse in it, each as
    (the top-level field it is under, message)."""
    top = where.split(".", 1)[0].split("[", 1)[0]
    if value is None or shape == _ANY:
        return value, []
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return None, [(top, f"{where} must be a mapping, got {_type_name(value)}")]
        names = {name.lower(): name for name in shape}
        out: dict[str, Any] = {}
        errors: list[tuple[str, str]] = []
        for key, item in value.items():
            name = names.get(str(key).lower())
            if name is None:
                errors.append((top or str(key), f'unknown field "{key}"' + (f" in {where}" if where else "")))
                continue
            out[name], found = _check(item, shape[name], f"{where}.{name}" if where else name)
            errors.extend(found)
        return out, errors
    if isinstance(shape, tuple):
        container, inner = shape
        if container == "list":
            if not isinstance(value, list):
                return None, [(top, f"{where} must be a list, got {_type_name(value)}")]
            checked = [_check(item, inner, f"{where}[{i}]") for i, item in enumerate(value)]
            return [c[0] for c in checked], [e for c in checked for e in c[1]]
        if not isinstance(value, dict):
            return None, [(top, f"{where} must be a mapping, got {_type_name(value)}")]
        pairs = {str(k): _check(v, inner, f"{where}.{k}") for k, v in value.items()}
        return {k: c[0] for k, c in pairs.items()}, [e for c in pairs.values() for e in c[1]]
    wanted = {_S: str, _B: bool, _I: int}[shape]
    if isinstance(value, wanted) and not (wanted is int and isinstance(value, bool)):
        return value, []
    article = "an" if shape == _I else "a"
    return None, [(top, f"{where} must be {article} {shape}, got {_type_name(value)}")]


def known_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """A kustomization as kustomize-controller rewrites it before building a Flux path: decoded
    leniently into kustomize's type and encoded again, so unknown fields (at any depth) are
    gone and field names take Go's spelling; values of the wrong type stay, for the build to
    refuse them as Flux's decoder would."""
    known = _known(data, FIELDS)
    return known if isinstance(known, dict) else {}


def _known(value: Any, shape: Shape) -> Any:
    if isinstance(shape, dict) and isinstance(value, dict):
        names = {name.lower(): name for name in shape}
        return {names[str(k).lower()]: _known(v, shape[names[str(k).lower()]])
                for k, v in value.items() if str(k).lower() in names}
    if isinstance(shape, tuple) and shape[0] == "list" and isinstance(value, list):
        return [_known(item, shape[1]) for item in value]
    if isinstance(shape, tuple) and isinstance(value, dict):
        return {k: _known(v, shape[1]) for k, v in value.items()}
    return value


# Positions ---------------------------------------------------------------------------------------


def _positions(shown: str, text: str) -> dict[str, tuple[SourcePos, Any]]:
    """Where each top-level field and each item of a list field starts ("field", "field[i]")."""
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = next(iter(yaml.compose_all(text, Loader=loader)), None)
    except yaml.YAMLError:
        return {}
    found: dict[str, tuple[SourcePos, Any]] = {}
    if not isinstance(node, yaml.MappingNode):
        return found

    def at(mark: Any) -> SourcePos:
        return SourcePos(shown, mark.line + 1, mark.column + 1, syntax="flux")

    canonical = {name.lower(): name for name in FIELDS}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        name = canonical.get(key.value.lower(), key.value)
        found[name] = (at(key.start_mark), None)
        if isinstance(value, yaml.SequenceNode):
            for i, item in enumerate(value.value):
                found[f"{name}[{i}]"] = (at(item.start_mark), None)
    return found


@dataclass(frozen=True)
class KustFile:
    """One kustomization, its fields checked, as a build reads it."""

    directory: str
    """The repo-relative directory its paths are relative to."""
    kind: KustKind
    fields: Mapping[str, Any]
    where: SourcePos
    """Where problems without a more precise place point (the file, or the caller's place)."""
    positions: Mapping[str, tuple[SourcePos, Any]] = field(default_factory=dict)
    """"field" and "field[i]" -> where it is written and the value written there (None: any)."""
    file: str = ""
    """The repo-relative kustomization file of the directory ("" when it has none)."""

    def pos(self, name: str, index: int | None = None, value: object = None) -> SourcePos:
        """Where `name` (or its item `index`) is written; `where` when not known."""
        key = name if index is None else f"{name}[{index}]"
        hit = self.positions.get(key) or self.positions.get(name)
        if hit is None or (hit[1] is not None and value is not None and hit[1] != value):
            return self.where
        return hit[0]

    def located(self, name: str) -> list[tuple[Any, SourcePos]]:
        """The items of a list field with where each is written; `resources` includes the
        deprecated `bases` and `images` the deprecated `imageTags`, as kustomize merges them."""
        names = {"resources": ("resources", "bases"), "images": ("images", "imageTags")}
        found: list[tuple[Any, SourcePos]] = []
        for each in names.get(name, (name,)):
            value = self.fields.get(each)
            if isinstance(value, list):
                found.extend((item, self.pos(each, i, item)) for i, item in enumerate(value))
        return found

    def string(self, name: str) -> str:
        value = self.fields.get(name)
        return value if isinstance(value, str) else ""

    def string_map(self, name: str) -> dict[str, str]:
        value = self.fields.get(name)
        return {k: v or "" for k, v in value.items()} if isinstance(value, dict) else {}


def kustomization_file(tree: Tree, directory: str, problems: Problems, where: SourcePos) -> str | None:
    """The kustomization file of `directory`; an error when it holds none or several."""
    found = [posixpath.join(directory, name) if directory else name for name in KUSTOMIZATION_FILES]
    found = [name for name in found if tree.is_file(name)]
    if len(found) > 1:
        problems.error(f"found multiple kustomization files in {tree.display(directory)}: "
                       f"{', '.join(posixpath.basename(f) for f in found)}", where)
        return None
    if not found:
        names = ", ".join(f"'{n}'" for n in KUSTOMIZATION_FILES[:-1]) + f" or '{KUSTOMIZATION_FILES[-1]}'"
        problems.error(f"unable to find one of {names} in directory "
                       f"'{tree.display(directory)}'", where)
        return None
    return found[0]


def read_kust(tree: Tree, directory: str, problems: Problems, where: SourcePos, *,
              given: Mapping[str, Any] | None = None) -> KustFile | None:
    """The kustomization of `directory`: `given` when passed (Flux's generated or overlaid one),
    else its kustomization file. None, with located errors, when there is none to read."""
    file: str | None
    if given is None:
        file = kustomization_file(tree, directory, problems, where)
        if file is None:
            return None
    else:
        file = next((f for f in (posixpath.join(directory, n) if directory else n
                                 for n in KUSTOMIZATION_FILES) if tree.is_file(f)), None)
    positions: dict[str, tuple[SourcePos, Any]] = {}
    data: Any = given
    if file is not None:
        shown = tree.display(file)
        if given is None:
            where = SourcePos(shown, syntax="flux")
        text = tree.text(file, problems if given is None else None)
        if text is not None:
            positions = _positions(shown, text)
            if given is None:
                data = _first_document(shown, text, problems, where)
                if data is None:
                    return None
            else:
                positions = _still_written(positions, shown, text, given)
    if not isinstance(data, dict):
        problems.error("a kustomization must be a mapping", where)
        return None
    return _checked(directory, dict(data), where, positions, problems, file or "")


def _first_document(shown: str, text: str, problems: Problems, where: SourcePos) -> dict[str, Any] | None:
    try:
        docs = kubeyaml.read_documents(shown, text, v2=True)
    except YamlSyntaxError as err:
        problems.extend([err.problem])
        return None
    if not docs or docs[0].number != 1:
        return {}  # kustomize reads the first document only
    if not isinstance(docs[0].value, dict):
        problems.error("a kustomization must be a mapping", where)
        return None
    return docs[0].value


def _still_written(positions: dict[str, tuple[SourcePos, Any]], shown: str, text: str,
                   given: Mapping[str, Any]) -> dict[str, tuple[SourcePos, Any]]:
    """Positions of the file's values that `given` kept unchanged (Flux appends to lists and
    sets scalars): each remembers its value, so a changed one points elsewhere."""
    try:
        written = kubeyaml.read_documents(shown, text, v2=True)
    except YamlSyntaxError:
        return {}
    first = written[0].value if written and isinstance(written[0].value, dict) else {}
    kept: dict[str, tuple[SourcePos, Any]] = {}
    for key, (pos, _) in positions.items():
        name, _, index = key.partition("[")
        value = first.get(name)
        if index:
            i = int(index.rstrip("]"))
            item = value[i] if isinstance(value, list) and i < len(value) else None
            ours = given.get(name)
            if isinstance(ours, list) and i < len(ours) and ours[i] == item:
                kept[key] = (pos, item)
        elif given.get(name) == value:
            kept[key] = (pos, None)
    return kept


def _checked(directory: str, data: dict[str, Any], where: SourcePos,
             positions: Mapping[str, tuple[SourcePos, Any]], problems: Problems, file: str) -> KustFile | None:
    fields, errors = _check(data, FIELDS, "")
    holder = KustFile(directory, KustKind.KUSTOMIZATION, {}, where, positions)
    for top, error in errors:
        problems.error(f"invalid kustomization: {error}", holder.pos(top))
    kind = fields.get("kind") or KustKind.KUSTOMIZATION.value
    if kind not in (KustKind.KUSTOMIZATION.value, KustKind.COMPONENT.value):
        problems.error(f"kind should be {KustKind.KUSTOMIZATION.value} or "
                       f"{KustKind.COMPONENT.value}, not {kind!r}", holder.pos("kind"))
        return None
    api = KUSTOMIZATION_API if kind == KustKind.KUSTOMIZATION.value else COMPONENT_API
    if fields.get("apiVersion") and fields["apiVersion"] != api:
        problems.error(f"apiVersion for {kind} should be {api}", holder.pos("apiVersion"))
        return None
    if all(v is None for k, v in fields.items() if k not in ("apiVersion", "kind")):
        problems.error(f"{posixpath.basename(file) if file else 'the kustomization'} is empty", where)
        return None
    return KustFile(directory, KustKind(kind), fields, where, positions, file)
