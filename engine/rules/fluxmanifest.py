"""One Flux document being read, and the fields every kind reads the same way.

`Manifest` is the document with its version; `read_header` checks metadata and opens `spec`
with the fields the kind knows; `read_local_ref`, `read_git_ref` and `read_source_ref` read the
references several kinds share. The per-group readers (fluxsource.py, fluxkustomize.py,
fluximage.py) build on these.

What a kind does not model is kept verbatim (`Carried`, then the rule's `flux_fields`): the
spec fields a reader ignores or carries, metadata labels, annotations (but gitward's own),
finalizers, owner references and `generateName`, and the apiVersion when a field the v1 API
removed is kept. What cannot be kept is a warning with the code NOT_KEPT: `status` and the
fields the API server sets (never read), and SOPS ciphertext (never decrypted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import yaml

from engine.errors import Problems, SourcePos, did_you_mean
from engine.model import DEFAULT_NAMESPACE, FluxField, GitRef, SourceKind, SourceRef
from engine.rules.fluxapi import GITWARD_PREFIX, NOT_KEPT
from engine.rules.fluxfields import carried
from engine.rules.yamldoc import Document, Struct, Verbatim, ciphertext_in, is_null, join

_AGE = {"v1beta1": 0, "v1beta2": 1, "v1": 2}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_METADATA = (
    "name", "namespace", "labels", "annotations", "generateName", "uid", "resourceVersion",
    "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
    "ownerReferences", "finalizers", "managedFields", "selfLink", "clusterName",
)
_CARRIED_METADATA = ("labels", "finalizers", "ownerReferences", "generateName")
_SERVER_SET = (
    "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds", "managedFields", "selfLink", "clusterName",
)
_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status", "sops")
_GIT_REF = ("branch", "tag", "semver", "name", "commit")

T = TypeVar("T")


def or_else(value: T | None, default: T) -> T:
    """`value`, or `default` where an optional field was absent (None, not any falsy value)."""
    return default if value is None else value


@dataclass(frozen=True)
class Manifest:
    """One Flux document being read: its version, and where its object is said to be."""

    doc: Document
    problems: Problems
    api_version: str
    version: str
    origin: SourcePos

    def since(self, fields: Mapping[str, str]) -> dict[str, str]:
        """Fields added after this document's version -> the error their presence is."""
        return {
            name: f"not available in {self.api_version} (added in {added})"
            for name, added in fields.items()
            if _AGE[self.version] < _AGE[added]
        }


class Carried:
    """The fields of one object that gitward does not model, gathered while it is read: the
    structs opened by `read_header` add the fields they keep to `verbatim`."""

    def __init__(self, m: Manifest) -> None:
        self.m = m
        self.verbatim: list[Verbatim] = []
        self.built: list[FluxField] = []

    def flux_fields(self) -> tuple[FluxField, ...]:
        """Every kept field, by path; one holding SOPS ciphertext is a NOT_KEPT warning instead
        (call it once, when the object is read)."""
        found = list(self.built)
        for item in self.verbatim:
            secret = ciphertext_in(item.value)
            if secret is not None:
                self.m.problems.warning(
                    f"{item.path} holds a SOPS-encrypted value: gitward does not decrypt, so it "
                    "cannot keep the field", self.m.doc.pos(secret), code=NOT_KEPT)
                continue
            found.append(carried(item.path, self.m.doc.to_json(item.value), self.m.doc.pos(item.key)))
        return tuple(sorted(found, key=lambda f: f.path))


@dataclass(frozen=True)
class Header:
    """What every kind has: metadata (name, namespace, the gitward annotations), `spec`, and
    what the reader keeps verbatim."""

    name: str
    namespace: str
    spec: Struct | None
    annotations: dict[str, tuple[str, SourcePos]]
    carried: Carried


def read_header(
    m: Manifest,
    spec_fields: Iterable[str],
    *,
    ignored: Mapping[str, str] | None = None,
    retired: Mapping[str, str] | None = None,
    unavailable: Mapping[str, str] | None = None,
    annotations: Iterable[str] = (),
) -> Header:
    """Check the top level and metadata; open `spec` with the fields this kind knows.

    `ignored` spec fields are warnings and kept verbatim; `retired` ones too (fields of a beta
    API that v1 removed), and the object then keeps its apiVersion, since v1 has no place for
    them. A top-level `sops` mapping (the metadata of a SOPS-encrypted file) is accepted on
    every kind without a word: Flux decrypts such objects and drops it; values still encrypted
    warn where they are read.
    """
    assert m.doc.node is not None
    keep = Carried(m)
    top = Struct(m.doc, m.problems, m.doc.node, "", _TOP_LEVEL, verbatim=keep.verbatim)
    _not_kept(top, "status", "is written by Flux's controllers")
    meta = top.struct("metadata", _METADATA, required=True)
    name, namespace = "", DEFAULT_NAMESPACE
    notes: dict[str, tuple[str, SourcePos]] = {}
    if meta is not None:
        name = or_else(meta.string("name", required=True), "")
        if name and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name)):
            meta.error("name", f'"{name}" is not a valid Kubernetes name (lower-case letters, digits, "-" and ".")')
        namespace = or_else(meta.string("namespace"), "") or DEFAULT_NAMESPACE
        if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
            meta.error("namespace", f'"{namespace}" is not a valid namespace (lower-case letters, digits and "-")')
        notes = _annotations(meta, tuple(annotations), keep)
        for field in _CARRIED_METADATA:
            meta.carry(field)
        for field in _SERVER_SET:
            _not_kept(meta, field, "is set by the API server")
    spec = top.struct("spec", tuple(spec_fields), required=True, ignored={**(ignored or {}), **(retired or {})},
                      unavailable=unavailable)
    if spec is not None and retired and not set(retired).isdisjoint(spec.keys):
        keep.built.append(carried("apiVersion", m.api_version, m.origin))
    return Header(name, namespace, spec, notes, keep)


def _not_kept(struct: Struct, key: str, why: str) -> None:
    """A field gitward never reads and so cannot carry: a NOT_KEPT warning, unless empty."""
    node = struct.values.get(key)
    if node is None or is_null(node) or (isinstance(node, yaml.CollectionNode) and not node.value):
        return
    struct.problems.warning(f"{join(struct.where, key)} {why}: gitward does not read it, and convert and "
                            "export leave it out", struct.key_pos(key), code=NOT_KEPT)


def _annotations(meta: Struct, allowed: tuple[str, ...], keep: Carried) -> dict[str, tuple[str, SourcePos]]:
    """The `gitward.dev/*` annotations this kind reads, as text with the value's position; the
    others are kept verbatim."""
    sub = meta.struct("annotations", (), open_keys=True)
    found: dict[str, tuple[str, SourcePos]] = {}
    if sub is None:
        return found
    others: dict[str, object] = {}
    for key in sub.names():
        if key in allowed:
            text = sub.string(key)
            if text is not None:
                found[key] = (text, sub.pos(key))
            continue
        if key.startswith(GITWARD_PREFIX):
            sub.problems.warning(
                f'{sub.where}: annotation "{key}" means nothing to gitward here{did_you_mean(key, allowed)}',
                sub.key_pos(key),
            )
        if not sub.encrypted(sub.values[key], f"{sub.where}.{key}"):
            others[key] = sub.doc.to_json(sub.values[key])
    if others:
        keep.built.append(carried("metadata.annotations", others, meta.key_pos("annotations")))
    return found


def read_local_ref(struct: Struct, key: str) -> str:
    """A `{name: ...}` reference (secretRef and friends) -> the name."""
    sub = struct.struct(key, ("name",))
    return or_else(sub.string("name", required=True), "") if sub else ""


def read_git_ref(struct: Struct, key: str, required: bool = False) -> tuple[GitRef | None, Struct | None]:
    """A GitRepositoryRef, and the mapping it was read from (for warnings about its fields)."""
    sub = struct.struct(key, _GIT_REF, required=required)
    if sub is None:
        return None, None
    return GitRef(**{field: or_else(sub.string(field), "") for field in _GIT_REF}), sub


def read_source_ref(spec: Struct, *, default_kind: str = "") -> SourceRef | None:
    """`spec.sourceRef`. A Kustomization may name any Flux source kind; an automation (which
    has a `default_kind`) only a GitRepository."""
    sub = spec.struct(
        "sourceRef", ("kind", "name", "namespace"), required=True,
        ignored={"apiVersion": "the source is always source.toolkit.fluxcd.io"},
    )
    if sub is None:
        return None
    text = sub.string("kind", required=not default_kind) or default_kind
    allowed = [SourceKind.GIT_REPOSITORY.value] if default_kind else [k.value for k in SourceKind]
    kind = SourceKind(text) if text in allowed else None
    if kind is None and text:
        listed = allowed[0] if len(allowed) == 1 else f"{', '.join(allowed[:-1])} or {allowed[-1]}"
        hint = "" if text in {k.value for k in SourceKind} else did_you_mean(text, allowed)
        sub.error("kind", f'must be {listed}, got "{text}"{hint}')
    name = or_else(sub.string("name", required=True), "")
    return SourceRef(name, or_else(sub.string("namespace"), ""), kind=kind or SourceKind.GIT_REPOSITORY,
                     origin=sub.pos("name"))
