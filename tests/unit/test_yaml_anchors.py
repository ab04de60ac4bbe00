"""A redefined anchor is valid YAML 1.2: every reader takes it, and an alias names the latest one.

go-yaml (kustomize, and Flux's readers) keeps one table of anchors per document and overwrites an
entry when the same anchor is defined again; PyYAML refuses the second definition. These tests
pin go-yaml's reading in each of gitward's YAML readers.
"""

from __future__ import annotations

import pytest
import yaml

from engine.errors import Problems
from engine.evaluate import kubeyaml, render
from engine.rules.flux import read_flux
from engine.rules.yamldoc import YamlSyntaxError, load_documents
from tests.conftest import realworld_repo

REDEFINED = """\
env:
  - name: &name CF_API_TOKEN
    key: *name
  - name: &name CF_ZONE_ID
    key: *name
nested: &block {a: 1}
again: *block
---
other: &name third
use: *name
"""


def plain(node: yaml.Node) -> object:
    """A composed node as plain data, so the tests read what an alias resolved to."""
    if isinstance(node, yaml.MappingNode):
        return {k.value: plain(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [plain(v) for v in node.value]
    return node.value


def test_flux_reader_takes_a_redefined_anchor_and_the_alias_names_the_latest() -> None:
    docs = load_documents("hr.yaml", REDEFINED)
    assert [d.node is not None for d in docs] == [True, True]
    assert docs[0].node is not None and docs[1].node is not None
    first = plain(docs[0].node)
    assert first == {
        "env": [{"name": "CF_API_TOKEN", "key": "CF_API_TOKEN"}, {"name": "CF_ZONE_ID", "key": "CF_ZONE_ID"}],
        "nested": {"a": "1"},
        "again": {"a": "1"},
    }
    assert plain(docs[1].node) == {"other": "third", "use": "third"}


def test_positions_survive_the_python_composer() -> None:
    [doc] = load_documents("hr.yaml", "a: &x 1\nb: &x 2\nc: *x\n")
    assert isinstance(doc.node, yaml.MappingNode)
    alias_target = doc.node.value[2][1]
    assert (doc.pos(alias_target).line, doc.pos(alias_target).column) == (2, 4)  # the second definition


@pytest.mark.parametrize("v2", [False, True])
def test_manifest_reader_takes_a_redefined_anchor(v2: bool) -> None:
    docs = kubeyaml.read_documents("hr.yaml", REDEFINED, v2=v2)
    assert [d.number for d in docs] == [1, 2]
    assert docs[0].value["env"] == [  # type: ignore[index]
        {"name": "CF_API_TOKEN", "key": "CF_API_TOKEN"},
        {"name": "CF_ZONE_ID", "key": "CF_ZONE_ID"},
    ]
    assert docs[1].value == {"other": "third", "use": "third"}


def test_manifest_reader_keeps_go_scalars_after_the_retry() -> None:
    # the retry composes in Python but resolves as before: go-yaml v3 reads `yes` as a string
    [doc] = kubeyaml.read_documents("m.yaml", "a: &x yes\nb: &x 1.0\nc: *x\n")
    assert doc.value == {"a": "yes", "b": 1, "c": 1}


def test_document_index_reads_a_file_with_a_redefined_anchor() -> None:
    text = "kind: ConfigMap\nmetadata:\n  name: &n one\n  labels: {x: *n, y: &n two}\n---\nkind: Secret\nmetadata: {name: s}\n"
    index = render.document_index(text)
    assert index.entries == {("ConfigMap", "one"): (1, 1), ("Secret", "s"): (2, 6)}


def test_a_real_error_after_a_redefinition_is_still_located() -> None:
    text = "a: &x 1\nb: &x 2\nc: *nowhere\n"
    with pytest.raises(YamlSyntaxError) as info:
        load_documents("e.yaml", text)
    problem = info.value.problem
    assert "found undefined alias 'nowhere'" in problem.message
    assert problem.pos is not None and (problem.pos.line, problem.pos.column) == (3, 4)
    with pytest.raises(YamlSyntaxError):
        kubeyaml.read_documents("e.yaml", text)


def test_an_undefined_alias_stays_an_error_in_the_manifest_reader() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        kubeyaml.read_documents("e.yaml", "a: &x 1\n---\nb: *x\n")
    assert "undefined alias" in info.value.problem.render(excerpt=False)


# onedr0p/home-ops defines `&name` twice in a HelmRelease and `&key` twice in a PushSecret
REALWORLD_REDEFINED = [
    "kubernetes/apps/network/cloudflare-dns/app/helmrelease.yaml",
    "kubernetes/apps/network/certificates/export/pushsecret.yaml",
]


@pytest.mark.parametrize("rel", REALWORLD_REDEFINED)
def test_realworld_files_with_redefined_anchors_read_cleanly(rel: str) -> None:
    path = realworld_repo("onedr0p__home-ops") / rel
    text = path.read_text()
    assert len(load_documents(rel, text)) == 1
    [doc] = kubeyaml.read_documents(rel, text)
    problems = Problems()
    read_flux(rel, text, problems)
    assert not problems.errors, [p.render(excerpt=False) for p in problems.errors]
    if rel.endswith("helmrelease.yaml"):
        env = doc.value["spec"]["values"]["env"]  # type: ignore[index]
        assert [(e["name"], e["valueFrom"]["secretKeyRef"]["key"]) for e in env] == [
            ("CF_API_TOKEN", "CF_API_TOKEN"),
            ("CF_ZONE_ID", "CF_ZONE_ID"),
        ]
