"""Every Flux object of the corpora survives Flux -> DSL -> Flux, or the test says why not.

Each GitRepository, OCIRepository, Kustomization, ImageRepository, ImagePolicy and
ImageUpdateAutomation of the homelab and realworld corpora is read from its file, printed as
rules, parsed back and written as Flux YAML; the result must be the same object to Flux
(crd_schema.flux_equal_form, with the CRD of its version). The only objects that do not get
through are the ones gitward refuses to read, listed in NOT_READ with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.errors import Problems
from engine.model import Rule, SkippedObject
from engine.rules.flux import write_flux
from engine.rules.fluxapi import IMAGE_GROUP, KUSTOMIZE_GROUP, SOURCE_GROUP
from engine.rules.fluxread import read_object
from engine.rules.parse import parse_rules
from engine.rules.printer import print_rules
from engine.rules.yamldoc import Document, YamlSyntaxError, load_documents
from tests.conftest import HOMELAB_CORPUS, REALWORLD_CORPUS, require_corpus
from tests.unit.crd_schema import KINDS, Schema, crd_schemas, flux_equal_form

NOT_READ = {
    "realworld/MTRNord__cluster/infrastructure_talos/controllers/base-image-updater.yaml#1":
        'unknown field "message" in spec.git.commit (did you mean "messageTemplate"?)',
    "realworld/fluxcd__flux2-multi-tenancy/tenants/production/dev-team-patch.yaml#1": "spec.prune is required",
    "realworld/fluxcd__flux2-multi-tenancy/tenants/staging/dev-team-patch.yaml#1": "spec.prune is required",
}
"""Objects gitward refuses, and the first error it says: a field Flux does not have (the API
server would drop it), and two kustomize patches that are only the fields they change."""

CORPORA = {"homelab": HOMELAB_CORPUS, "realworld": REALWORLD_CORPUS}
GROUPS = (SOURCE_GROUP, KUSTOMIZE_GROUP, IMAGE_GROUP)


@pytest.fixture(scope="module")
def schemas() -> dict[tuple[str, str], Schema]:
    require_corpus(HOMELAB_CORPUS.is_dir() and REALWORLD_CORPUS.is_dir(), "the corpora are absent")
    return crd_schemas(HOMELAB_CORPUS.parent)


def flux_documents(root: Path) -> Iterator[tuple[str, Document, dict[str, Any]]]:
    """(where, document, its data) for every document of the six kinds under `root`."""
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "toolkit.fluxcd.io" not in text:
            continue
        try:
            docs = load_documents(str(path), text)
        except YamlSyntaxError:
            continue  # not YAML: no object to name
        for doc in docs:
            data = doc.to_python(doc.node) if doc.node is not None else None
            if (isinstance(data, dict) and data.get("kind") in KINDS
                    and str(data.get("apiVersion", "")).rpartition("/")[0] in GROUPS):
                yield f"{path.relative_to(HOMELAB_CORPUS.parent)}#{doc.number}", doc, data


def through_the_dsl(doc: Document) -> tuple[dict[str, Any] | None, str]:
    """The object after Flux -> DSL -> Flux, or None and the first error on the way."""
    problems = Problems()
    rule = read_object(doc, problems)
    if problems.errors or rule is None or isinstance(rule, SkippedObject):
        return None, problems.errors[0].message if problems.errors else "not read"
    rules: list[Rule] = [rule]
    back = parse_rules("object.rules", print_rules(rules), problems)
    if problems.errors:
        return None, f"the rules do not parse: {problems.errors[0].message}"
    return yaml.safe_load(write_flux(back)), ""


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_every_flux_object_of_the_corpus_round_trips(corpus: str, schemas: dict[tuple[str, str], Schema]) -> None:
    changed, not_read, count = [], {}, 0
    for where, doc, data in flux_documents(CORPORA[corpus]):
        count += 1
        out, why = through_the_dsl(doc)
        if out is None:
            not_read[where] = why
            continue
        schema = schemas[(data["kind"], str(data["apiVersion"]).rpartition("/")[2])]
        if flux_equal_form(out, schema) != flux_equal_form(data, schema):
            changed.append(f"{where}: {flux_equal_form(data, schema)}\n  became {flux_equal_form(out, schema)}")
    assert changed == []
    assert not_read == {where: why for where, why in NOT_READ.items() if where.startswith(corpus)}
    assert count > len(not_read)
