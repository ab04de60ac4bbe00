"""kustomize's ConfigMap and Secret generators, and the hash they put in their names.

A generated object is no Flux object, but Flux objects refer to it: a HelmRelease's
`valuesFrom` names a generated ConfigMap, and a kustomization's `configurations` let kustomize
rewrite that reference to the hashed name (engine/evaluate/kustref.py). So the contents are
made exactly as kustomize v5 makes them (env files, then literals, then files; UTF-8 values in
`data`, others base64 in `binaryData`; Secret values base64 in `data`), and the hash is
kustomize's: the first ten hex digits of the SHA-256 of a Go-JSON encoding of kind, type, data
and binaryData (the name is in the encoding but always empty there, as kyaml reads it from a
path it never finds), vowels and 0, 1, 3 swapped for consonants.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
from collections.abc import Mapping
from typing import Any

from engine.errors import Problems, SourcePos
from engine.evaluate.kustfile import KustFile, Tree, reach
from engine.evaluate.resid import string_map
from engine.evaluate.resmap import Resource, find_by_any_id

_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
                 "\f": "\\f", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                 "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HASH_LETTERS = str.maketrans("013ae", "ghkmt")


def _options(kust: KustFile, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry's options with `generatorOptions` merged over them (kustomize lets the
    global ones win)."""
    local = entry.get("options") or {}
    common = kust.fields.get("generatorOptions") or {}
    return {
        "labels": {**string_map(local.get("labels")), **string_map(common.get("labels"))},
        "annotations": {**string_map(local.get("annotations")), **string_map(common.get("annotations"))},
        "disableNameSuffixHash": bool(local.get("disableNameSuffixHash") or common.get("disableNameSuffixHash")),
        "immutable": bool(local.get("immutable") or common.get("immutable")),
    }


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


class _Pairs:
    """The key/value pairs of one generator entry, with kustomize's refusals."""

    def __init__(self, tree: Tree, kust: KustFile, what: str, problems: Problems, pos: SourcePos) -> None:
        self.tree, self.kust, self.what, self.problems, self.pos = tree, kust, what, problems, pos
        self.pairs: dict[str, bytes] = {}
        self.ok = True

    def fail(self, message: str) -> None:
        self.problems.error(f"{self.what}: {message}", self.pos)
        self.ok = False

    def add(self, key: str, value: bytes) -> None:
        if key in self.pairs:
            self.fail(f"illegally repeats the key `{key}`")
        else:
            self.pairs[key] = value

    def read(self, path: str) -> bytes | None:
        rel, why = reach(self.tree, self.kust.directory, path)
        data = self.tree.data(rel) if rel is not None and self.tree.is_file(rel) else None
        if data is None:
            self.fail(why or f"'{path}' is not a file in the repository")
        return data

    def env_file(self, path: str) -> None:
        data = self.read(path)
        if data is None:
            return
        for number, raw in enumerate(data.split(b"\n")):
            line = raw.removesuffix(b"\r")
            if number == 0:
                line = line.removeprefix(b"\xef\xbb\xbf")
            try:
                text = line.decode("utf-8").lstrip()
            except UnicodeDecodeError:
                self.fail(f"{path}: line {number + 1} is not UTF-8")
                return
            if not text or text.startswith("#"):
                continue
            key, _, value = text.partition("=")  # no "=": kustomize's empty environment
            self.add(key, value.encode("utf-8"))

    def literal(self, source: str) -> None:
        key, equals, value = source.partition("=")
        if not equals or not key:
            self.fail(f"invalid literal source {source}, expected key=value")
            return
        self.add(key, _unquote(value).encode("utf-8"))

    def file(self, source: str) -> None:
        if source.count("=") > 1:
            self.fail("key names or file paths cannot contain '='")
            return
        key, equals, path = source.partition("=")
        if not equals:
            key, path = posixpath.basename(source), source
        elif not key or not path:
            self.fail(f"invalid file source {source}")
            return
        data = self.read(path)
        if data is not None:
            self.add(key, data)


def generate(tree: Tree, kust: KustFile, kind: str, entry: Mapping[str, Any], pos: SourcePos,
             problems: Problems) -> Resource | None:
    """The ConfigMap or Secret one generator entry makes; None (with errors) when it cannot."""
    name = entry.get("name")
    what = ("configMapGenerator" if kind == "ConfigMap" else "secretGenerator") + (f": {name}" if name else "")
    if not name:
        problems.error(f"{what}: a {kind.lower()} must have a name", pos)
        return None
    pairs = _Pairs(tree, kust, what, problems, pos)
    for path in [*(entry.get("envs") or []), *([entry["env"]] if entry.get("env") else [])]:
        pairs.env_file(path)
    for source in entry.get("literals") or []:
        pairs.literal(source)
    for source in entry.get("files") or []:
        pairs.file(source)
    if not pairs.ok:
        return None
    options = _options(kust, entry)
    meta: dict[str, Any] = {"name": name}
    if entry.get("namespace"):
        meta["namespace"] = entry["namespace"]
    for key in ("labels", "annotations"):
        if options[key]:
            meta[key] = options[key]
    body: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": meta}
    if kind == "Secret":
        body["type"] = entry.get("type") or "Opaque"
        if pairs.pairs:
            body["data"] = {k: base64.b64encode(v).decode("ascii") for k, v in pairs.pairs.items()}
    else:
        text, binary = {}, {}
        for key, value in pairs.pairs.items():
            try:
                text[key] = value.decode("utf-8")
            except UnicodeDecodeError:
                binary[key] = base64.b64encode(value).decode("ascii")
        if text:
            body["data"] = text
        if binary:
            body["binaryData"] = binary
    if options["immutable"]:
        body["immutable"] = True
    # where it is written, when that is the kustomization file (not a caller's place)
    file = kust.file if kust.file and pos.path == tree.display(kust.file) else ""
    # kept whatever the caller keeps: the name hash needs the contents, patches included
    return Resource(body, file, 0, pos.line, True, needs_hash=not options["disableNameSuffixHash"])


def absorb(resources: list[Resource], res: Resource, behavior: str, what: str) -> str:
    """Add a generated object as kustomize does (behavior create, merge or replace); the
    message kustomize would fail with, or ""."""
    matches = find_by_any_id(resources, res.id)
    if not matches:
        if behavior in ("merge", "replace"):
            return f"{what}: {res.id} does not exist; cannot {behavior} it"
        resources.append(res)
        return ""
    if len(matches) > 1:
        return f"{what}: several objects could take {res.id}"
    old = matches[0]
    if behavior not in ("merge", "replace"):
        return f"{what}: {res.id} already exists ({old.where()}); behavior must be merge or replace"
    meta, old_meta = dict(res.metadata()), old.metadata()
    for key in ("labels", "annotations"):
        merged = {**string_map(old_meta.get(key)), **string_map(meta.get(key))}
        if merged:
            meta[key] = merged
    meta["name"] = old_meta.get("name")
    if old_meta.get("namespace"):
        meta["namespace"] = old_meta["namespace"]
    else:
        meta.pop("namespace", None)
    body = {**res.body, "metadata": meta}
    if behavior == "merge":
        for key in ("data", "binaryData"):
            merged = {**(old.body.get(key) or {}), **(res.body.get(key) or {})}
            if merged:
                body[key] = merged
    res.body, res.previous = body, list(old.previous)
    resources[resources.index(old)] = res
    return ""


def _go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it: sorted keys, HTML characters escaped."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_go_json(str(k))}:{_go_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, str):
        out = []
        for ch in value:
            escaped = _JSON_ESCAPES.get(ch)
            out.append(escaped if escaped is not None else f"\\u{ord(ch):04x}" if ord(ch) < 0x20 else ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    return str(value)


def content_hash(body: Mapping[str, Any]) -> str:
    """The suffix kustomize appends to a generated ConfigMap's or Secret's name."""
    def field(name: str) -> Any:
        value = body.get(name)
        return "" if value is None else value

    if body.get("kind") == "Secret":
        encoded: dict[str, Any] = {"kind": "Secret", "type": field("type"), "name": "", "data": field("data")}
        if isinstance(body.get("stringData"), dict):
            encoded["stringData"] = body["stringData"]
    else:
        encoded = {"kind": "ConfigMap", "name": "", "data": field("data")}
        if isinstance(body.get("binaryData"), dict):
            encoded["binaryData"] = body["binaryData"]
    digest = hashlib.sha256(_go_json(encoded).encode("utf-8")).hexdigest()
    return digest[:10].translate(_HASH_LETTERS)


def add_hashes(resources: list[Resource]) -> None:
    """kustomize's last step for generated objects: the name takes the content hash."""
    for res in resources:
        if res.needs_hash:
            res.remember_id()
            res.with_metadata(name=f"{res.id.name}-{content_hash(res.body)}")
