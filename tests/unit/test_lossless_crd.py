"""Every field of Flux's CRD schemas survives Flux -> DSL -> Flux.

For each served version of each kind gitward models (the CRDs of the corpora's
gotk-components.yaml), one object per field of `spec`, and per value of an enum: a minimal valid
object of the kind, plus that field set to a value its schema admits, with what its parents
require. Each object also has metadata labels and annotations. It is read, printed as rules,
parsed back and written as Flux YAML again, which must read back without an error and be the
same object to Flux (crd_schema.flux_equal_form): gitward models the field, or carries it.
`status`, which Flux's controllers write, is a located warning instead.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from engine.errors import Problems
from engine.model import Rule
from engine.rules.flux import read_flux, write_flux
from engine.rules.fluxapi import NOT_KEPT
from engine.rules.parse import parse_rules
from engine.rules.printer import print_rules
from tests.conftest import HOMELAB_CORPUS, REALWORLD_CORPUS, require_corpus
from tests.unit.crd_schema import DURATION_FIELDS, DURATION_PATTERNS, KINDS, Schema, crd_schemas, flux_equal_form

GROUPS = {
    "GitRepository": "source.toolkit.fluxcd.io", "OCIRepository": "source.toolkit.fluxcd.io",
    "Kustomization": "kustomize.toolkit.fluxcd.io", "ImageRepository": "image.toolkit.fluxcd.io",
    "ImagePolicy": "image.toolkit.fluxcd.io", "ImageUpdateAutomation": "image.toolkit.fluxcd.io",
}
SERVED = [(kind, version) for kind in KINDS for version in ("v1", "v1beta2")] + [
    (kind, "v1beta1") for kind in KINDS if kind != "OCIRepository"]

METADATA = {"name": "sample", "namespace": "apps", "labels": {"team": "platform"},
            "annotations": {"example.com/owner": "ops"}}
BASE: dict[str, dict[str, Any]] = {
    "GitRepository": {"interval": "1m", "url": "https://example.com/org/repo.git"},
    "OCIRepository": {"interval": "1m", "url": "oci://ghcr.io/org/manifests"},
    "Kustomization": {"interval": "10m", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "repo"}},
    "ImageRepository": {"image": "ghcr.io/org/app", "interval": "5m"},
    "ImagePolicy": {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=1.0.0"}}},
    "ImageUpdateAutomation": {"interval": "5m", "sourceRef": {"kind": "GitRepository", "name": "repo"},
                              "git": {"commit": {"author": {"email": "bot@example.com"}}}},
}
"""A minimal object of each kind that gitward reads without an error."""

CHECKED: dict[str, object] = {
    "GitRepository spec.url": "https://example.com/org/other.git",
    "OCIRepository spec.url": "oci://ghcr.io/org/other",
    "OCIRepository spec.ref.digest": "sha256:" + "0" * 64,
    "spec.ref.semver": ">=1.0.0",
    "spec.ref.semverFilter": ".*-rc.*",
    "spec.image": "ghcr.io/org/other",
    "spec.policy.semver.range": ">=2.0.0",
    "spec.filterTags.pattern": "^v(?P<version>.*)$",
    "spec.git.push.refspec": "refs/heads/main:refs/heads/auto",
}
"""Values of the strings whose form gitward checks beyond the schema (by `KIND path` or path)."""

PATTERNS = {DURATION_PATTERNS[0]: "90s", DURATION_PATTERNS[1]: "90s",
            "^(http|https|ssh)://.*$": "https://example.com/org/other.git", "^oci://.*$": "oci://ghcr.io/org/other"}

NEEDS: dict[str, dict[str, object]] = {
    "GitRepository spec.serviceAccountName": {"provider": "azure"},
    "ImagePolicy spec.interval": {"digestReflectionPolicy": "Always"},
    "ImagePolicy spec.digestReflectionPolicy=Always": {"interval": "10m"},
}
"""The spec fields a case also needs, as the CRD's validation rules say."""

REQUIRED_TOO = {"spec.patches[0]": ("patch",)}
"""Fields gitward's reader requires where an older CRD does not (a patch without its text)."""

ITEM = 0
"""A path step into the one item of a list."""


@pytest.fixture(scope="module")
def schemas() -> dict[tuple[str, str], Schema]:
    require_corpus(HOMELAB_CORPUS.is_dir() and REALWORLD_CORPUS.is_dir(), "the corpora are absent")
    return crd_schemas(HOMELAB_CORPUS.parent)


def label(path: list[str | int]) -> str:
    return "".join("[0]" if step == ITEM else f".{step}" for step in path).lstrip(".")


def leaves(schema: Schema, path: list[str | int]) -> Iterator[tuple[list[str | int], Schema]]:
    """Every field with no fields of its own below `schema`, descending into list items."""
    if "properties" in schema:
        for key, sub in schema["properties"].items():
            yield from leaves(sub, [*path, key])
    elif schema.get("type") == "array" and "properties" in schema.get("items", {}):
        yield from leaves(schema["items"], [*path, ITEM])
    else:
        yield path, schema


def value(kind: str, path: str, schema: Schema) -> object:
    """A value `schema` admits, and gitward's reader too."""
    for key in (f"{kind} {path}", path):
        if key in CHECKED:
            return CHECKED[key]
    if "enum" in schema:
        return schema["enum"][0]
    kind_of = schema.get("type")
    if path.rpartition(".")[2] in DURATION_FIELDS:
        return "90s"  # a duration, also where an old CRD has no pattern for it
    if kind_of == "string":
        return PATTERNS.get(schema.get("pattern", ""), "sample")
    if kind_of == "boolean":
        return True
    if kind_of == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind_of == "array":
        return [value(kind, f"{path}[0]", schema["items"])]
    if isinstance(schema.get("additionalProperties"), dict):
        return {"key": value(kind, f"{path}.key", schema["additionalProperties"])}
    if kind_of == "object" and "properties" in schema:
        return required(kind, path, schema, "")
    return {"sample": "value"}  # preserve-unknown-fields: any JSON


def required(kind: str, path: str, schema: Schema, but: str) -> dict[str, object]:
    keys = (*schema.get("required", ()), *REQUIRED_TOO.get(path, ()))
    return {key: value(kind, f"{path}.{key}", schema["properties"][key]) for key in keys if key != but}


def build(kind: str, schema: Schema, path: list[str | int], leaf: object, where: str = "spec") -> object:
    """A value of `schema` holding `leaf` at `path`, with the fields each level requires."""
    if not path:
        return leaf
    step, rest = path[0], path[1:]
    if step == ITEM:
        return [build(kind, schema["items"], rest, leaf, f"{where}[0]")]
    assert isinstance(step, str)
    obj = required(kind, where, schema, step)
    obj[step] = build(kind, schema["properties"][step], rest, leaf, f"{where}.{step}")
    return obj


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, item in extra.items():
        out[key] = merged(out[key], item) if isinstance(item, dict) and isinstance(out.get(key), dict) else item
    return out


def cases(kind: str, version: str, schema: Schema) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what is set, the object) for every field of the spec, and every value of an enum."""
    spec_schema = schema["properties"]["spec"]
    for path, leaf_schema in leaves(spec_schema, []):
        where = "spec." + label(path)
        for leaf in leaf_schema.get("enum") or [value(kind, where, leaf_schema)]:
            name = f"{where}={leaf}" if "enum" in leaf_schema else where
            spec = merged(BASE[kind], build(kind, spec_schema, path, leaf))  # type: ignore[arg-type]
            spec = merged(spec, NEEDS.get(f"{kind} {name}", {}))
            yield name, {"apiVersion": f"{GROUPS[kind]}/{version}", "kind": kind,
                         "metadata": copy.deepcopy(METADATA), "spec": spec}


def through_the_dsl(doc: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The object after Flux -> DSL -> Flux, or None and why it did not get through."""
    problems = Problems()
    rules: list[Rule] = read_flux("object.yaml", yaml.safe_dump(doc, sort_keys=False), problems)
    if problems.errors or len(rules) != 1:
        return None, f"not read: {[p.message for p in problems.errors]}"
    text = print_rules(rules)
    back = parse_rules("object.rules", text, problems)
    if problems.errors:
        return None, f"the rules do not parse: {[p.message for p in problems.errors]}\n{text}"
    out = write_flux(back)
    read_flux("again.yaml", out, problems)
    if problems.errors:
        return None, f"the written YAML does not read: {[p.message for p in problems.errors]}\n{out}"
    return yaml.safe_load(out), text


@pytest.mark.parametrize(("kind", "version"), SERVED)
def test_every_field_survives_flux_to_dsl_to_flux(kind: str, version: str,
                                                    schemas: dict[tuple[str, str], Schema]) -> None:
    require_corpus((kind, version) in schemas, f"no corpus CRD serves {kind} {version}")
    failures, covered = [], set()
    for name, doc in cases(kind, version, schemas[(kind, version)]):
        covered.add(name.split(".")[1].split("[")[0].split("=")[0])
        out, why = through_the_dsl(doc)
        if out is None:
            failures.append(f"{name}: {why}")
            continue
        expected = flux_equal_form(doc, schemas[(kind, version)])
        got = flux_equal_form(out, schemas[(kind, version)])
        if got != expected:
            failures.append(f"{name}: lost or changed\n  in:  {expected}\n  out: {got}\n{why}")
    assert failures == []
    assert covered == set(schemas[(kind, version)]["properties"]["spec"]["properties"])


def test_the_comparison_sees_a_field_lost(schemas: dict[tuple[str, str], Schema]) -> None:
    [(_, doc)] = [(n, d) for n, d in cases("Kustomization", "v1", schemas[("Kustomization", "v1")])
                  if n == "spec.decryption.provider=sops"]
    lost = copy.deepcopy(doc)
    del lost["spec"]["decryption"]
    schema = schemas[("Kustomization", "v1")]
    assert flux_equal_form(lost, schema) != flux_equal_form(doc, schema)
    del lost["metadata"]["labels"]
    assert flux_equal_form(lost, schema) != flux_equal_form(doc, schema)


def test_status_is_a_located_warning_not_a_silent_loss() -> None:
    doc = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": METADATA,
           "spec": BASE["Kustomization"], "status": {"lastAppliedRevision": "main@sha1:0d7c"}}
    problems = Problems()
    read_flux("object.yaml", yaml.safe_dump(doc, sort_keys=False), problems)
    [warning] = [p for p in problems.warnings if p.code == NOT_KEPT]
    assert warning.message.startswith("status is written by Flux's controllers")
    assert warning.pos is not None and warning.pos.line == 16


def test_the_walk_covers_nested_lists_maps_and_enums(schemas: dict[tuple[str, str], Schema]) -> None:
    names = {name for name, _ in cases("Kustomization", "v1", schemas[("Kustomization", "v1")])}
    assert {"spec.dependsOn[0].readyExpr", "spec.healthCheckExprs[0].current", "spec.postBuild.substitute",
            "spec.deletionPolicy=Delete", "spec.kubeConfig.secretRef.key"} <= names

