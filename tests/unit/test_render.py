"""Rendering a Kustomization's path in Python: Flux's generated kustomization, plain manifests
read as kustomize reads them, post-build substitution and labels, located errors, duplicates.

The kustomize side (sub-directories with a kustomization, overlays) runs the real kustomize in
tests/integration/test_build.py; nothing here fakes it.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import Problems, SourcePos
from engine.evaluate import kubeyaml, postbuild, render
from engine.evaluate.envsubst import SubstitutionError, substitute
from engine.evaluate.render import Located
from engine.model import ImageOverride, Kustomization, Manifest, Patch, Selector, SourceRef
from engine.rules.yamldoc import YamlSyntaxError


def ks(**fields: object) -> Kustomization:
    return Kustomization(name="apps", source_ref=SourceRef("flux-system"), path="./cluster",
                         **fields)  # type: ignore[arg-type]


def read(text: str, rel: str = "cluster/app.yaml") -> tuple[list[Located], Problems]:
    problems = Problems()
    return render.read_manifests(rel, rel, text, problems), problems


def bodies(items: list[Located]) -> list[dict[str, object]]:
    return [item.manifest.body for item in items]


def cm(name: str, namespace: str = "", **extra: object) -> str:
    ns = f"  namespace: {namespace}\n" if namespace else ""
    data = "".join(f"  {k}: {v}\n" for k, v in extra.items())
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{ns}"
            + (f"data:\n{data}" if data else ""))


# The generated kustomization --------------------------------------------------------------


WALK = [  # walk_repo order: lexical, depth first
    "README.md",
    "cluster/a.yaml",
    "cluster/apps/one/deploy.yml",
    "cluster/apps/one/notes.txt",
    "cluster/apps/two/kustomization.yaml",
    "cluster/apps/two/base/x.yaml",
    "cluster/apps/two/cm.yaml",
    "cluster/apps/zz.yaml",
    "cluster/b.json",
    "cluster/flux/Kustomization",
    "cluster/flux/gotk.yaml",
    "cluster/z.yaml",
    "other/c.yaml",
]


def test_generation_lists_yaml_files_in_walk_order_and_kustomized_directories_once() -> None:
    assert render.generated_resources(WALK, "cluster") == [
        "cluster/a.yaml",
        "cluster/apps/one/deploy.yml",
        "cluster/apps/two",
        "cluster/apps/zz.yaml",
        "cluster/flux",
        "cluster/z.yaml",
    ]


def test_generation_at_the_repository_root_and_for_an_empty_tree() -> None:
    entries = render.generated_resources(WALK, "")
    assert entries[0] == "cluster/a.yaml" and entries[-1] == "other/c.yaml"
    assert "README.md" not in entries and "cluster/b.json" not in entries
    assert render.generated_resources(WALK, "nowhere") == []


def test_the_kustomization_file_kustomize_would_read() -> None:
    assert render.kustomization_in(WALK, "cluster/apps/two") == "cluster/apps/two/kustomization.yaml"
    assert render.kustomization_in(WALK, "cluster/flux") == "cluster/flux/Kustomization"
    assert render.kustomization_in(WALK, "cluster") is None
    assert render.kustomization_in(["kustomization.yml"], "") == "kustomization.yml"


def test_only_overlays_flux_applies_through_kustomize_need_it() -> None:
    assert not render.needs_kustomize(ks())
    assert not render.needs_kustomize(ks(substitute=(("A", "b"),), common_labels=(("a", "b"),)))
    for fields in ({"target_namespace": "x"}, {"name_prefix": "p-"}, {"name_suffix": "-s"},
                   {"images": (ImageOverride("nginx", new_tag="1"),)},
                   {"patches": (Patch("- op: remove\n  path: /a\n"),)}, {"components": ("c",)}):
        assert render.needs_kustomize(ks(**fields)), fields


def test_flux_writes_its_overlays_into_the_generated_kustomization() -> None:
    k = ks(target_namespace="apps", name_prefix="p-", name_suffix="-s",
           images=(ImageOverride("nginx", new_name="registry/nginx", new_tag="1.25"),),
           patches=(Patch("- op: replace\n  path: /spec/replicas\n  value: 2\n",
                          Selector(kind="Deployment", name="web")),
                    Patch("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")))
    kus = render.flux_kustomization(None, ["./a.yaml", "./sub"], k)
    assert kus == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["./a.yaml", "./sub"], "namespace": "apps", "namePrefix": "p-",
        "nameSuffix": "-s",
        "patches": [{"patch": "- op: replace\n  path: /spec/replicas\n  value: 2\n",
                     "target": {"kind": "Deployment", "name": "web"}},
                    {"patch": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"}],
        "images": [{"name": "nginx", "newName": "registry/nginx", "newTag": "1.25"}],
    }


def test_overlays_extend_the_users_kustomization_and_replace_an_image_of_the_same_name() -> None:
    existing = {"resources": ["x.yaml"], "patches": [{"path": "p.yaml"}],
                "images": [{"name": "nginx", "newTag": "1"}, {"name": "redis", "newTag": "7"}]}
    k = ks(images=(ImageOverride("nginx", digest="sha256:abc"),), patches=(Patch("p: 1"),),
           components=("../comp",))
    kus = render.flux_kustomization(existing, [], k)
    assert kus["resources"] == ["x.yaml"]
    assert kus["patches"] == [{"path": "p.yaml"}, {"patch": "p: 1"}]
    assert kus["images"] == [{"name": "nginx", "digest": "sha256:abc"}, {"name": "redis", "newTag": "7"}]
    assert kus["components"] == ["../comp"]
    assert existing["images"] == [{"name": "nginx", "newTag": "1"}, {"name": "redis", "newTag": "7"}]


def test_gitward_builds_in_fifo_order_with_origin_annotations_unless_the_user_chose() -> None:
    kus, added = render.with_build_options({"resources": ["a.yaml"]})
    assert kus["sortOptions"] == {"order": "fifo"} and kus["buildMetadata"] == ["originAnnotations"]
    assert added
    mine = {"sortOptions": {"order": "legacy"}, "buildMetadata": ["originAnnotations"]}
    kus, added = render.with_build_options(mine)
    assert kus == mine and not added


def test_a_generated_kustomization_dumps_as_yaml_kustomize_reads() -> None:
    kus = render.flux_kustomization(None, ["./a.yaml"], ks(target_namespace="on"))
    text = render.dump_kustomization(kus)
    assert "namespace: 'on'" in text
    assert render.read_kustomization("k.yaml", text) == kus


# Plain manifests, read as kustomize reads them ----------------------------------------------


def test_documents_become_manifests_with_their_file_and_document() -> None:
    items, problems = read("---\n" + cm("a") + "---\n---\n# nothing\n---\n" + cm("b", "ns"))
    assert not problems.items
    assert [i.manifest.origin for i in items] == ["cluster/app.yaml: document 1",
                                                  "cluster/app.yaml: document 4"]
    assert [(i.pos.line, i.document, i.file) for i in items] == [(2, 1, "cluster/app.yaml"),
                                                                 (10, 4, "cluster/app.yaml")]
    assert str(items[1].manifest.id) == "ConfigMap/ns/b"


def test_scalars_resolve_as_go_yaml_v3_then_json_leaves_them() -> None:
    items, problems = read(cm("x", b1="yes", b2="on", b3="y", b4="True", i1="0o17", i2="1_000",
                              i3="1:30", i4="08", i5="0x1F", f1="1e3", f2=".5", f3="1.0",
                              t1="2001-12-14", t2="2001-12-14t21:59:43.10-05:00",
                              t3="2001-12-14 21:59:43.10", t4='"2001-12-14"', n1="~",
                              s1="1e400", s2="0755", s3="'0755'", big="99999999999999999999"))
    assert not problems.items
    data = bodies(items)[0]["data"]
    assert data == {
        "b1": "yes", "b2": "on", "b3": "y", "b4": True, "i1": 15, "i2": 1000, "i3": "1:30",
        "i4": 8, "i5": 31, "f1": 1000, "f2": 0.5, "f3": 1, "t1": "2001-12-14T00:00:00Z",
        "t2": "2001-12-14T21:59:43.1-05:00", "t3": "2001-12-14T21:59:43.1Z", "t4": "2001-12-14",
        "n1": None, "s1": "1e400", "s2": 493, "s3": "0755", "big": 1e20,
    }
    assert isinstance(data["f3"], int) and isinstance(data["big"], float)


def test_lists_are_expanded_and_local_config_and_empty_documents_dropped() -> None:
    text = """\
apiVersion: v1
kind: ConfigMapList
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: one}
- null
- apiVersion: v1
  kind: List
  items:
  - {apiVersion: v1, kind: Secret, metadata: {name: two}}
---
{}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: local
  annotations:
    config.kubernetes.io/local-config: "true"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: kept
  annotations:
    config.kubernetes.io/local-config: "false"
"""
    items, problems = read(text)
    assert not problems.items
    assert [(i.manifest.kind, i.manifest.name) for i in items] == [
        ("ConfigMap", "one"), ("Secret", "two"), ("ConfigMap", "kept")]


def test_anchors_and_merge_keys_are_resolved() -> None:
    items, _ = read("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: &n x\n"
                    "  labels:\n    <<: {a: '1', n: old}\n    n: *n\n")
    assert bodies(items)[0]["metadata"] == {"name": "x", "labels": {"a": "1", "n": "x"}}


@pytest.mark.parametrize(("text", "line", "message"), [
    ("apiVersion: v1\nmetadata:\n  name: x\n", 1, "document 1: missing kind"),
    ("apiVersion: v1\nkind: ConfigMap\n", 1, "document 1: missing metadata.name (a string)"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: 12\n", 1,
     "document 1: missing metadata.name (a string)"),
    ("kind: ConfigMap\nmetadata:\n  name: x\n", 1, "document 1: missing apiVersion"),
    (cm("a") + "---\njust a string\n", 6,
     "document 2: not a Kubernetes object: a scalar, expected a mapping with apiVersion, kind "
     "and metadata"),
    ("- a\n- b\n", 1, "document 1: not a Kubernetes object: a list, expected a mapping with "
     "apiVersion, kind and metadata"),
    ("replicas: 1\n", 1, "document 1: not a Kubernetes object: no apiVersion, kind or metadata"),
    ("apiVersion: v1\nkind: List\nitems: {a: 1}\n", 1,
     "document 1: expected a list in List.items, got a mapping"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [a]\n", 1,
     "document 1: metadata.labels must be a mapping"),
])
def test_documents_that_are_not_kubernetes_objects_are_located_errors(
        text: str, line: int, message: str) -> None:
    items, problems = read(text)
    assert [(p.message, p.pos.line if p.pos else 0) for p in problems.errors] == [(message, line)]


def test_a_yaml_syntax_error_names_file_document_line_and_column() -> None:
    _, problems = read(cm("a") + "---\n" + cm("b") + "data:\n  key: a: b\n", "cluster/x/deploy.yaml")
    [problem] = problems.errors
    assert problem.message == "document 2: mapping values are not allowed here"
    assert problem.pos == SourcePos("cluster/x/deploy.yaml", 11, 9)


def test_duplicate_keys_are_errors_as_in_go_yaml() -> None:
    _, problems = read("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  name: y\n")
    [problem] = problems.errors
    assert problem.message == 'document 1: mapping key "name" already defined at line 4'
    assert (problem.pos.line, problem.pos.column) == (5, 3)  # type: ignore[union-attr]


def test_infinity_cannot_become_json() -> None:
    _, problems = read(cm("x", v=".inf"))
    assert "cannot be written as JSON" in problems.errors[0].message


# After the build ----------------------------------------------------------------------------


def located(body: dict[str, object], origin: str, line: int = 1) -> Located:
    return Located(Manifest(body, origin), SourcePos(origin.split(":")[0], line, 1))


def obj(name: str, namespace: str = "", kind: str = "ConfigMap", **meta: object) -> dict[str, object]:
    metadata: dict[str, object] = {"name": name, **meta}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": kind, "metadata": metadata}


def test_duplicates_name_both_files_and_the_default_namespace_equals_none() -> None:
    problems = Problems()
    postbuild.check_duplicates([located(obj("a"), "x.yaml: document 1"),
                             located(obj("a", "default"), "y.yaml: document 3", 7),
                             located(obj("a", "other"), "z.yaml: document 1"),
                             located(obj("a", kind="Secret"), "z.yaml: document 2")], problems)
    [problem] = problems.errors
    assert problem.message == ("ConfigMap/default/a is defined twice: in x.yaml: document 1 "
                               "and in y.yaml: document 3")
    assert problem.pos == SourcePos("y.yaml", 7, 1) and problem.code == "duplicate"


def substituted(body: dict[str, object], **variables: str) -> tuple[list[dict[str, object]], Problems]:
    problems = Problems()
    items = postbuild.substitute_variables([located(body, "app.yaml: document 1", 3)],
                                        variables, problems)
    return bodies(items), problems


def test_substitution_replaces_variables_and_retypes_plain_values() -> None:
    body = obj("web-${ENV}", kind="Deployment")
    body["apiVersion"] = "apps/v1"
    body["spec"] = {"replicas": "${REPLICAS}", "note": "${UNSET}", "quoted": "${MISSING:=7}",
                    "flag": "${FLAG}", "escaped": "$${ENV}", "script": "echo ${ENV}\nexit 0\n"}
    [out], problems = substituted(body, ENV="prod", REPLICAS="3", FLAG="yes")
    assert not problems.items
    assert out["metadata"] == {"name": "web-prod"}
    assert out["spec"] == {"replicas": 3, "note": None, "quoted": 7, "flag": True,
                           "escaped": "${ENV}", "script": "echo prod\nexit 0\n"}


def test_substitution_can_be_disabled_per_object_and_needs_variables() -> None:
    for key in ("annotations", "labels"):
        body = obj("x")
        body["metadata"] = {"name": "x", key: {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}}
        body["data"] = {"a": "${ENV}"}
        [out], _ = substituted(body, ENV="prod")
        assert out["data"] == {"a": "${ENV}"}
    body = obj("x")
    body["data"] = {"a": "${ENV}", "b": "$$"}
    [out], _ = substituted(body)
    assert out is body


def test_substitution_errors_are_located_at_the_object() -> None:
    body = obj("x")
    body["data"] = {"a": "${ENV"}
    out, problems = substituted(body, ENV="prod")
    assert out == []
    [problem] = problems.errors
    assert problem.message == "app.yaml: document 1: variable substitution failed: missing closing brace"
    assert problem.pos == SourcePos("app.yaml", 3, 1)
    body["data"] = {"a": "${ENV}"}
    out, problems = substituted(body, ENV="a: b")
    assert "after variable substitution: not valid YAML" in problems.errors[0].message


def test_variable_names_follow_flux_and_values_lose_newlines() -> None:
    problems = Problems()
    variables = postbuild.check_variables(ks(substitute=(("GOOD_1", "a\nb"), ("bad-name", "x"))), problems)
    assert variables == {"GOOD_1": "ab"}
    assert 'postBuild.substitute: "bad-name" is not a valid variable name' in problems.errors[0].message


def test_owner_labels_then_common_metadata_on_new_bodies() -> None:
    body = obj("x", labels={"app": "x", "team": "a"}, annotations={"note": "keep"})
    item = located(body, "a.yaml: document 1")
    k = ks(namespace="flux-system", common_labels=(("team", "b"),), common_annotations=(("owner", "me"),))
    [out] = postbuild.set_metadata([item], k)
    assert out.manifest.metadata == {
        "name": "x",
        "labels": {"app": "x", "team": "b", "kustomize.toolkit.fluxcd.io/name": "apps",
                   "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
        "annotations": {"note": "keep", "owner": "me"},
    }
    assert body["metadata"] == {"name": "x", "labels": {"app": "x", "team": "a"},
                                "annotations": {"note": "keep"}}


def test_finish_substitutes_before_checking_duplicates() -> None:
    first, second = obj("app-${A}"), obj("app-${B}")
    problems = Problems()
    postbuild.finish([located(first, "a.yaml: document 1"), located(second, "b.yaml: document 1")],
                  ks(substitute=(("A", "x"), ("B", "x"))), problems)
    assert [p.code for p in problems.errors] == ["duplicate"]


# Objects kustomize built --------------------------------------------------------------------

BUILT = """\
apiVersion: v1
data:
  a: b
kind: ConfigMap
metadata:
  annotations:
    config.kubernetes.io/origin: |
      configuredIn: sub/kustomization.yaml
      configuredBy:
        apiVersion: builtin
        kind: ConfigMapGenerator
  name: p-cfg-4h2mbtbbt6
---
apiVersion: v1
kind: Service
metadata:
  annotations:
    config.kubernetes.io/origin: |
      path: plain/a.yaml
    keep: "yes"
  name: web
---
apiVersion: v1
kind: Namespace
metadata:
  name: bare
"""


def test_built_objects_are_named_by_their_origin_annotation_which_is_removed() -> None:
    problems = Problems()
    index = {"cluster/plain/a.yaml": render.DocumentIndex({("Service", "web"): (2, 9)})}
    items = render.read_built(BUILT, "cluster", "cluster (kustomize output)", problems,
                              strip_origin=True, show=lambda rel: f"./{rel}", index=index.get)
    assert not problems.items
    assert [i.manifest.origin for i in items] == [
        "cluster/sub/kustomization.yaml: ConfigMapGenerator",
        "cluster/plain/a.yaml: document 2",
        "cluster: object 3",
    ]
    assert items[1].pos == SourcePos("./cluster/plain/a.yaml", 9, 1)
    assert items[0].manifest.metadata == {"name": "p-cfg-4h2mbtbbt6"}
    assert items[1].manifest.metadata == {"name": "web", "annotations": {"keep": "yes"}}


def test_a_users_origin_annotations_are_kept() -> None:
    items = render.read_built(BUILT, "", "out", Problems(), strip_origin=False,
                              show=str, index=lambda rel: None)
    assert render.ORIGIN in items[1].manifest.metadata["annotations"]  # type: ignore[operator]
    assert items[1].manifest.origin == "plain/a.yaml"


def test_a_document_index_finds_objects_by_kind_and_name() -> None:
    index = render.document_index("# c\n" + cm("a") + "---\n" + cm("b") + "---\n- x\n")
    assert index.find("ConfigMap", "b") == (2, 7)
    assert index.find("ConfigMap", "renamed") is None
    assert render.document_index(cm("only")).find("ConfigMap", "p-only") == (1, 1)


# YAML that round-trips through Go -----------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                     st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
                     st.text(max_size=20),
                     st.sampled_from(["yes", "on", "y", "N", "0o17", "1e3", "1_000", "~", "null",
                                      "2001-12-14", "0755", "-.5", ".inf", "1:30", "<<", "=",
                                      "a: b", "- x", "#c", "line\nline", " pad ", "${X}"]))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _values, max_size=5))
def test_dumped_objects_read_back_identically_as_flux_reads_them(data: dict[str, object]) -> None:
    [doc] = kubeyaml.read_documents("x", kubeyaml.dump({"k": data}), v2=True)
    assert doc.value == {"k": data}


def test_go_yaml_v2_reads_old_booleans_v3_does_not() -> None:
    assert kubeyaml.go_tag("yes", v2=True) == kubeyaml.BOOL
    assert kubeyaml.go_tag("yes", v2=False) == kubeyaml.STR
    assert kubeyaml.go_tag("2001-12-14", v2=False) == kubeyaml.TIMESTAMP
    assert kubeyaml.go_tag("2001-12-14", v2=True) == kubeyaml.STR
    assert kubeyaml.go_tag("1e400", v2=False) == kubeyaml.STR
    assert kubeyaml.go_tag("-.Inf", v2=False) == kubeyaml.FLOAT


def test_explicit_tags_with_bad_values_are_errors_not_crashes() -> None:
    with pytest.raises(YamlSyntaxError, match='invalid integer "abc"'):
        kubeyaml.read_documents("x", "a: !!int abc\n")
    assert kubeyaml.read_documents("x", "a: !custom {b: 1}\n")[0].value == {"a": {"b": 1}}
    [doc] = kubeyaml.read_documents("x", "a: !!float 1_0.5\n")
    assert math.isclose(doc.value["a"], 10.5)  # type: ignore[index]


# Flux's envsubst ----------------------------------------------------------------------------

VARS = {"var01": "abcdEFGH28ij", "path": "/home/bozo/ideas/thoughts.for.today",
        "z": "abcABC123ABCabc", "file": "bash.string.txt", "dflt": "foo1", "p": "path/to/file"}


@pytest.mark.parametrize(("template", "expected"), [
    ("plain text", "plain text"),
    ("${var01}", "abcdEFGH28ij"),
    ("${unset}", ""),
    ("$var01 and $", "$var01 and $"),
    ("${#var01}", "12"),
    ("${var01^}", "AbcdEFGH28ij"),
    ("${var01^^}", "ABCDEFGH28IJ"),
    ("${var01,}", "abcdEFGH28ij"),
    ("${var01,,}", "abcdefgh28ij"),
    ("${path:11}", "ideas/thoughts.for.today"),
    ("${path:11:5}", "ideas"),
    ("${path:-5}", "/home/bozo/ideas/thoughts.for.today"),
    ("${unset:-5}", "5"),
    ("${var=xyz}", "xyz"),
    ("${var01=xyz}", "abcdEFGH28ij"),
    ("${var:=xyz}", "xyz"),
    ("${var:+xyz}", "xyz"),
    ("foo: ${var=${dflt}-suffix}", "foo: foo1-suffix"),
    ("foo: ${var=prefix${dflt}-suffix}", "foo: prefixfoo1-suffix"),
    ("${var=${var01^^}}", "ABCDEFGH28IJ"),
    ("${z/%abc/XYZ}", "abcABC123ABCXYZ"),
    ("${z/#abc/XYZ}", "XYZABC123ABCabc"),
    ("${z//abc/xyz}", "xyzABC123ABCxyz"),
    ("${z/abc/xyz}", "xyzABC123ABCabc"),
    ("${z/#/pre-}", "pre-abcABC123ABCabc"),
    ("${z/%/-post}", "abcABC123ABCabc-post"),
    ("${file/./}", "bashstring.txt"),
    ("${p/\\//-}", "path-to/file"),
    ("${p//\\//-}", "path-to-file"),
    ("${file#*.}", "string.txt"),
    ("${file##*.}", "txt"),
    ("${file%.*}", "bash.string"),
    ("${file%%.*}", "bash"),
    ("${p#*/}", "to/file"),
    ("${p##*/}", "file"),
    ("$${var01}", "${var01}"),
    ("$$", "$"),
    ("some text ${var01}$${var$${var01}$var01${var01}",
     "some text abcdEFGH28ij${var${var01}$var01abcdEFGH28ij"),
    ("something $${var=${dflt}}", "something ${var=foo1}"),
    ("\\\\something ${var=${dflt}}", "\\\\something foo1"),
])
def test_envsubst_matches_fluxs_fork(template: str, expected: str) -> None:
    assert substitute(template, VARS) == expected


@pytest.mark.parametrize(("template", "message"), [
    ("${", "unable to parse variable name"),
    ("${}", "unable to parse variable name"),
    ("${x", "missing closing brace"),
    ("${x-default}", "missing closing brace"),
    ("${x:}", "unable to parse substitution within function"),
    ("${x:=a", "unable to parse substitution within function"),
    ("${#}", "bad substitution"),
])
def test_envsubst_refuses_what_flux_refuses(template: str, message: str) -> None:
    with pytest.raises(SubstitutionError, match=message):
        substitute(template, VARS)
