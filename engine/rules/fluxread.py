"""Reading Flux YAML: which documents are Flux objects, and which reader each one gets.

`read_flux` loads the documents of a file and hands each Flux object to the reader of its group
and kind (fluxsource.py, fluxkustomize.py, fluximage.py); other documents are not ours and are
skipped. An object with an error is left out, the others load.
"""

from __future__ import annotations

from collections.abc import Callable

import yaml

from engine.errors import Problems, SourcePos
from engine.model import (
    GitSource,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    OCISource,
    Rule,
)
from engine.rules.fluxapi import IMAGE_GROUP, KUSTOMIZE_GROUP, SOURCE_GROUP, VERSIONS
from engine.rules.fluximage import (
    read_image_policy,
    read_image_repository,
    read_image_update,
)
from engine.rules.fluxkustomize import read_kustomization
from engine.rules.fluxmanifest import Manifest
from engine.rules.fluxsource import read_git_repository, read_oci_repository
from engine.rules.yamldoc import Document, YamlSyntaxError, load_documents


def read_flux(path: str, text: str, problems: Problems) -> list[Rule]:
    """The Flux objects of a (multi-document) YAML file; every problem goes to `problems`.

    An object with an error is left out; the others load. A YAML syntax error loses the file.
    """
    try:
        docs = load_documents(path, text)
    except YamlSyntaxError as err:
        problems.extend([err.problem])
        return []
    rules: list[Rule] = []
    for doc in docs:
        before = len(problems.errors)
        try:
            rule = _read_document(doc, problems)
        except YamlSyntaxError as err:
            problems.extend([err.problem])
            continue
        except RecursionError:
            problems.error(f"document {doc.number}: nested too deeply", SourcePos(path, syntax="flux"))
            continue
        if rule is not None and len(problems.errors) == before:
            rules.append(rule)
    return rules


def _read_document(doc: Document, problems: Problems) -> Rule | None:
    node = doc.node
    if not isinstance(node, yaml.MappingNode):
        return None
    fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and isinstance(value, yaml.ScalarNode) and value.tag.endswith(":str"):
            fields.setdefault(str(key.value), (key, value))
    if "apiVersion" not in fields or "kind" not in fields:
        return None
    api_version, kind = fields["apiVersion"][1].value, fields["kind"][1].value
    group, _, version = api_version.rpartition("/")
    reader = _READERS.get((group, kind))
    if reader is None:
        return None
    if version not in VERSIONS:
        problems.error(
            f'{kind} apiVersion "{api_version}" is not supported: use {group}/v1 (or v1beta2, v1beta1)',
            doc.pos(fields["apiVersion"][1]),
        )
        return None
    kind_key, kind_value = fields["kind"]
    start, end = doc.pos(kind_key), doc.pos(kind_value)
    origin = SourcePos(doc.path, start.line, start.column, end.end_line, end.end_column, syntax="flux")
    return reader(Manifest(doc, problems, api_version, version, origin))


_READERS: dict[tuple[str, str], Callable[[Manifest], Rule | None]] = {
    (SOURCE_GROUP, GitSource.KIND): read_git_repository,
    (SOURCE_GROUP, OCISource.KIND): read_oci_repository,
    (KUSTOMIZE_GROUP, Kustomization.KIND): read_kustomization,
    (IMAGE_GROUP, ImageRepository.KIND): read_image_repository,
    (IMAGE_GROUP, ImagePolicy.KIND): read_image_policy,
    (IMAGE_GROUP, ImageUpdate.KIND): read_image_update,
}
