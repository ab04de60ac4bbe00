"""Ids, targets and selectors as kustomize compares them; a checkout's files as a RepoTree."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import Problems, SourcePos
from engine.evaluate.kustfile import known_fields, read_kust
from engine.evaluate.resid import NO_NAMESPACE, ResId, SelectorError, Target, parse_selector
from engine.rules.tree import RepoTree

SCOPES = [
    ("v1", "Namespace", True), ("v1", "ConfigMap", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", True),
    ("rbac.authorization.k8s.io/v1alpha1", "ClusterRole", False),  # not in kustomize's schema
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", True),
    ("storage.k8s.io/v1", "StorageClass", True), ("policy/v1beta1", "PodSecurityPolicy", True),
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization", False),
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease", False),
]


@pytest.mark.parametrize(("api", "kind", "cluster"), SCOPES)
def test_cluster_scoped_kinds_are_kustomizes(api: str, kind: str, cluster: bool) -> None:
    rid = ResId(api, kind, "x")
    assert rid.cluster_scoped is cluster
    assert rid.effective_namespace == (NO_NAMESPACE if cluster else "default")


def test_ids_compare_as_kustomize_does() -> None:
    hr = "helm.toolkit.fluxcd.io/v2"
    assert ResId(hr, "HelmRelease", "a").key == ResId(hr, "HelmRelease", "a", "default").key
    assert ResId(hr, "HelmRelease", "a").key != ResId("helm.toolkit.fluxcd.io/v2beta1", "HelmRelease", "a").key
    assert ResId("v1", "Namespace", "a", "x").key == ResId("v1", "Namespace", "a", "y").key
    assert str(ResId(hr, "HelmRelease", "a")) == "HelmRelease.v2.helm.toolkit.fluxcd.io/a.[noNs]"
    assert str(ResId("v1", "ConfigMap", "a", "ns")) == "ConfigMap.v1.[noGrp]/a.ns"


SELECTORS = [
    ("", {}, True),
    ("a=b", {"a": "b"}, True), ("a==b", {"a": "c"}, False), ("a!=b", {}, True),
    ("a", {"a": ""}, True), ("!a", {"a": ""}, False), ("!a", {}, True),
    ("a in (x, y)", {"a": "y"}, True), ("a in (x,y)", {}, False),
    ("a notin (x)", {}, True), ("a notin (x)", {"a": "x"}, False),
    ("a in (x),b,!c", {"a": "x", "b": "1"}, True), ("a in (x),b,!c", {"a": "x", "b": "1", "c": "1"}, False),
    ("n>3", {"n": "4"}, True), ("n<3", {"n": "4"}, False), ("n>3", {"n": "x"}, False),
    ("example.com/key = v", {"example.com/key": "v"}, True),
]


@pytest.mark.parametrize(("selector", "labels", "selected"), SELECTORS)
def test_label_selectors(selector: str, labels: dict[str, str], selected: bool) -> None:
    assert parse_selector(selector)(labels) is selected


@pytest.mark.parametrize("bad", ["a in x", "=b", "a=b=c", "a in (x", "n>x", "a=@"])
def test_bad_label_selectors_are_refused(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector(bad)


def test_targets_are_anchored_and_match_original_or_current_ids() -> None:
    hr = "helm.toolkit.fluxcd.io/v2"
    current, original = ResId(hr, "HelmRelease", "p-app", "prod"), ResId(hr, "HelmRelease", "app", "default")

    def selects(**fields: str) -> bool:
        return Target.of(fields).selects(current, original, {"tier": "web"}, {})

    assert selects(kind="HelmRelease", name="app") and selects(name="p-app") and selects(namespace="default")
    assert not selects(kind="Helm") and not selects(name="pp")
    assert selects(kind="Helm.*", group="helm\\.toolkit\\..*", version="v2", labelSelector="tier=web")
    assert not selects(version="v2beta1") and not selects(labelSelector="tier!=web")
    with pytest.raises(SelectorError, match="invalid regular expression"):
        Target.of({"name": "(unclosed"})


def make_tree(root: Path, files: dict[str, bytes], spec_ignore: str = "") -> RepoTree:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return RepoTree(root, spec_ignore)


def test_repo_tree_holds_the_files_that_count(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"b/c/x.yaml": b"a: 1\n", "a.yaml": b"\xef\xbb\xbfa: 1\n", ".git/config": b"",
                                "b/skip.yaml": b"", ".sourceignore": b"b/skip.yaml\n", "logo.png": b"",
                                "ignored.yaml": b""}, "ignored.yaml")
    # a .sourceignore (or spec.ignore) replaces Flux's default exclusions: logo.png counts
    assert tree.files == (".sourceignore", "a.yaml", "b/c/x.yaml", "logo.png")
    assert tree.is_dir("") and tree.is_dir("b") and tree.is_dir("b/c") and not tree.is_dir("b/c/x.yaml")
    assert tree.is_file("a.yaml") and not tree.is_file("b/skip.yaml") and not tree.is_dir(".git")
    assert tree.text("a.yaml") == "a: 1\n"  # the BOM is dropped
    assert tree.text("nope.yaml") is None


def test_repo_tree_reads_once_and_locates_bad_text(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"ok.yaml": b"a: 1\n", "bad.yaml": b"a: 1\nb: \xff\n"})
    assert tree.text("ok.yaml") == "a: 1\n"
    (tmp_path / "ok.yaml").write_bytes(b"changed\n")
    assert tree.text("ok.yaml") == "a: 1\n"
    for _ in range(2):
        problems = Problems()
        assert tree.text("bad.yaml", problems) is None
        (problem,) = problems.items
        assert problem.pos is not None and (problem.pos.line, problem.pos.column) == (2, 4)
        assert problem.pos.path == tree.display("bad.yaml")


def test_kustomization_fields_are_located_and_checked(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"k/kustomization.yaml": b"Resources:\n  - a.yaml\n  - b.yaml\nbases: [c]\n"
                                                        b"images: [{name: x, newTag: 1}]\n"})
    problems = Problems()
    kust = read_kust(tree, "k", problems, SourcePos("k"))
    assert kust is not None
    assert [(value, pos.line, pos.column) for value, pos in kust.located("resources")] == [
        ("a.yaml", 2, 5), ("b.yaml", 3, 5), ("c", 4, 9)]
    assert [p.message for p in problems.items] == [
        "invalid kustomization: images[0].newTag must be a string, got a number"]
    assert problems.items[0].pos is not None and problems.items[0].pos.line == 5


def test_known_fields_are_what_flux_writes_back() -> None:
    """kustomize-controller decodes a path's kustomization leniently and writes it again."""
    written = {"Resources": ["a.yaml"], "foo": 1, "namePrefix": True,
               "patches": [{"patch": "x", "extra": 1, "target": {"kind": "A", "bogus": 2}}],
               "commonLabels": {"a": "b"}}
    assert known_fields(written) == {"resources": ["a.yaml"], "namePrefix": True,
                                     "patches": [{"patch": "x", "target": {"kind": "A"}}],
                                     "commonLabels": {"a": "b"}}
