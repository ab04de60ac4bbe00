"""Reading Flux YAML: which documents are Flux objects, and which reader each one gets.

`read_flux` loads the documents of a file and hands each Flux object to the reader of its group
and kind (fluxsource.py, fluxkustomize.py, fluximage.py); other documents are not ours and are
skipped. An object with an error is left out (`read_object` says which, as a SkippedObject), the
others load. Flux kinds gitward does not reconcile (HelmRelease, HelmRepository, Bucket, ...)
are read as FluxObjects: listed, never an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import yaml

from engine.errors import Problem, Problems, SourcePos, did_you_mean
from engine.model import (
    DEFAULT_NAMESPACE,
    FluxObject,
    GitSource,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    ObjectKey,
    OCISource,
    Rule,
    SkippedObject,
)
from engine.rules.fluxapi import (
    FLUX_GROUP_SUFFIX,
    IGNORED_FIELD,
    IMAGE_GROUP,
    KUSTOMIZE_GROUP,
    NOT_RECONCILED,
    SOURCE_GROUP,
    VERSIONS,
)
from engine.rules.fluximage import (
    read_image_policy,
    read_image_repository,
    read_image_update,
)
from engine.rules.fluxkustomize import read_kustomization
from engine.rules.fluxmanifest import Manifest
from engine.rules.fluxsource import read_git_repository, read_oci_repository
from engine.rules.yamldoc import Document, Struct, YamlSyntaxError, load_documents


def read_flux(path: str, text: str, problems: Problems,
              skipped: list[SkippedObject] | None = None) -> list[Rule]:
    """The Flux objects of a (multi-document) YAML file; every problem goes to `problems`.

    An object with an error is left out (named in `skipped` when given); the others load. A
    YAML syntax error loses the file.
    """
    try:
        docs = load_documents(path, text)
    except YamlSyntaxError as err:
        problems.extend([err.problem])
        return []
    rules: list[Rule] = []
    for doc in docs:
        found = read_object(doc, problems)
        if isinstance(found, SkippedObject):
            if skipped is not None:
                skipped.append(found)
        elif found is not None:
            rules.append(found)
    return rules


def read_object(doc: Document, problems: Problems) -> Rule | SkippedObject | None:
    """One document: its rule, a SkippedObject naming it when it has an error, or None when it
    is not a Flux object."""
    before = len(problems.errors)
    try:
        rule = _read_document(doc, problems)
    except YamlSyntaxError as err:
        problems.extend([err.problem])
        rule = None
    except RecursionError:
        problems.error(f"document {doc.number}: nested too deeply", SourcePos(doc.path, syntax="flux"))
        rule = None
    if len(problems.errors) == before:
        return rule
    return _skipped(doc, problems.errors[before].message)


def _header_fields(node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and isinstance(value, yaml.ScalarNode) and value.tag.endswith(":str"):
            fields.setdefault(str(key.value), (key, value))
    return fields


def _skipped(doc: Document, reason: str) -> SkippedObject | None:
    """The object a broken Flux document meant to define, as far as its header says."""
    node = doc.node
    if not isinstance(node, yaml.MappingNode):
        return None
    fields = _header_fields(node)
    if "kind" not in fields or "apiVersion" not in fields:
        return None
    if not fields["apiVersion"][1].value.rpartition("/")[0].endswith(FLUX_GROUP_SUFFIX):
        return None
    meta = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "metadata"), None)
    found = _header_fields(meta) if isinstance(meta, yaml.MappingNode) else {}
    name = found["name"][1].value if "name" in found else "(unnamed)"
    namespace = found["namespace"][1].value if "namespace" in found else DEFAULT_NAMESPACE
    kind_key = fields["kind"][0]
    return SkippedObject(ObjectKey(fields["kind"][1].value, namespace, name), reason, doc.pos(kind_key))


def _read_document(doc: Document, problems: Problems) -> Rule | None:
    node = doc.node
    if not isinstance(node, yaml.MappingNode):
        return None
    fields = _header_fields(node)
    if "apiVersion" not in fields or "kind" not in fields:
        return None
    api_version, kind = fields["apiVersion"][1].value, fields["kind"][1].value
    group, _, version = api_version.rpartition("/")
    reader = _READERS.get((group, kind))
    if reader is None:
        return _flux_object(doc, problems, group, api_version, kind, fields)
    if version not in VERSIONS:
        problems.error(
            f'{kind} apiVersion "{api_version}" is not supported: use {group}/v1 (or v1beta2, v1beta1)',
            doc.pos(fields["apiVersion"][1]),
        )
        return None
    kind_key, kind_value = fields["kind"]
    start, end = doc.pos(kind_key), doc.pos(kind_value)
    origin = SourcePos(doc.path, start.line, start.column, end.end_line, end.end_column, syntax="flux")
    before = len(problems.items)
    return with_ignored(reader(Manifest(doc, problems, api_version, version, origin)),
                        problems.items[before:])


def with_ignored(rule: Rule | None, said: Sequence[Problem]) -> Rule | None:
    """`rule` keeping the warnings about fields gitward does not act on (code IGNORED_FIELD)
    that its reader gave, for `plan` and `gitward run` to say again."""
    ignored = tuple(p for p in said if p.code == IGNORED_FIELD)
    if not ignored or not isinstance(rule, (GitSource, OCISource, Kustomization, ImageRepository,
                                            ImagePolicy, ImageUpdate)):
        return rule
    return dataclasses.replace(rule, ignored=ignored)


def _flux_object(doc: Document, problems: Problems, group: str, api_version: str, kind: str,
                 fields: dict[str, tuple[yaml.Node, yaml.Node]]) -> FluxObject | None:
    """A Flux kind gitward does not reconcile, by its metadata alone; None when not Flux's."""
    if not group.endswith(FLUX_GROUP_SUFFIX):
        return None
    known = NOT_RECONCILED.get(group)
    if known is not None and kind not in known:
        reconciled = [k for g, k in _READERS if g == group]
        problems.warning(f"{kind} is not a kind of {group}{did_you_mean(kind, [*known, *reconciled])}: "
                         "read as an object gitward does not reconcile", doc.pos(fields["kind"][1]))
    top = Struct(doc, problems, doc.node, "", (), open_keys=True)  # type: ignore[arg-type]
    meta = top.struct("metadata", (), required=True, open_keys=True)
    if meta is None:
        return None
    name = meta.string("name", required=True)
    if not name:
        return None
    namespace = meta.string("namespace") or DEFAULT_NAMESPACE
    kind_key, kind_value = fields["kind"]
    start, end = doc.pos(kind_key), doc.pos(kind_value)
    origin = SourcePos(doc.path, start.line, start.column, end.end_line, end.end_column, syntax="flux")
    return FluxObject(kind, name, namespace, api_version, origin)


_READERS: dict[tuple[str, str], Callable[[Manifest], Rule | None]] = {
    (SOURCE_GROUP, GitSource.KIND): read_git_repository,
    (SOURCE_GROUP, OCISource.KIND): read_oci_repository,
    (KUSTOMIZE_GROUP, Kustomization.KIND): read_kustomization,
    (IMAGE_GROUP, ImageRepository.KIND): read_image_repository,
    (IMAGE_GROUP, ImagePolicy.KIND): read_image_policy,
    (IMAGE_GROUP, ImageUpdate.KIND): read_image_update,
}
