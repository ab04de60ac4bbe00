"""engine/evaluate/kustomize.py: which Flux objects a directory renders to, on small trees.

Each expectation was taken from `kubectl kustomize` (kustomize v5.5.0) on the same files;
tests/integration/test_kustomize_equivalence.py compares whole corpus repositories with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.errors import Problems, Severity
from engine.evaluate import kubeyaml
from engine.evaluate.kustomize import NEEDS_KUSTOMIZE, Rendered, build_directory, flux_kinds
from engine.rules.tree import RepoTree

K = "kustomization.yaml"
HR = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: hr\n"
COMPONENT = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
Key = tuple[str, str, str]


def hr(name: str = "hr", extra: str = "") -> str:
    return HR.replace("name: hr", f"name: {name}") + extra


def write(root: Path, files: dict[str, str]) -> RepoTree:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return RepoTree(root)


def build(root: Path, files: dict[str, str], directory: str = "", **options: Any) -> Rendered:
    return build_directory(write(root, files), directory, keep=options.pop("keep", flux_kinds), **options)


def by_key(bodies: Any) -> dict[Key, Any]:
    out = {}
    for body in bodies:
        meta = body.get("metadata") or {}
        out[(body["kind"], meta.get("namespace") or "", meta["name"])] = body
    return out


def objects(rendered: Rendered) -> dict[Key, Any]:
    return by_key(item.manifest.body for item in rendered.objects)


def expect(text: str) -> dict[Key, Any]:
    return by_key(d.value for d in kubeyaml.read_documents("expected", text))


def messages(rendered: Rendered, severity: Severity) -> list[str]:
    return [p.message for p in rendered.problems if p.severity is severity]


BUILDS: list[tuple[str, dict[str, str], str]] = [
    ("namespace, affixes, labels and annotations reach Flux objects; cluster-scoped kinds keep none",
     {K: "namespace: foo\nnamePrefix: p-\nnameSuffix: -s\ncommonLabels: {cl: v}\n"
         "labels: [{pairs: {l1: v}, includeSelectors: true, includeTemplates: true}]\n"
         "commonAnnotations: {ca: v}\nresources: [a.yaml]\n",
      "a.yaml": hr(extra="spec:\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}}\n")
      + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"},
     "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n"
     "  annotations: {ca: v}\n  labels: {cl: v, l1: v}\n  name: p-hr-s\n  namespace: foo\n"
     "spec:\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}}\n"),
    ("commonLabels win over labels",
     {K: "commonLabels: {cl: a}\nlabels: [{pairs: {cl: b}}]\nresources: [a.yaml]\n", "a.yaml": HR},
     HR + "  labels: {cl: a}\n"),
    ("a base's namespace and prefix, then the overlay's namespace",
     {K: "namespace: foo\nresources: [b]\n", "b/" + K: "namespace: bar\nnamePrefix: p-\nresources: [b.yaml]\n",
      "b/b.yaml": HR},
     hr("p-hr", "  namespace: foo\n")),
    ("a component patches and renames what its parent accumulated",
     {K: "namespace: foo\nresources: [a.yaml]\ncomponents: [c]\n", "a.yaml": HR,
      "c/" + K: COMPONENT + "resources: [b.yaml]\nnamePrefix: c-\npatches:\n- target: {kind: HelmRelease}\n"
                            "  patch: |\n    - {op: add, path: /spec, value: {x: 1}}\n",
      "c/b.yaml": hr("hb")},
     hr("c-hr", "  namespace: foo\nspec: {x: 1}\n") + "---\n" + hr("c-hb", "  namespace: foo\nspec: {x: 1}\n")),
    ("a diamond: one base under two prefixes",
     {K: "resources: [a, b]\n", "a/" + K: "resources: [../c]\nnamePrefix: a-\n",
      "b/" + K: "resources: [../c]\nnamePrefix: b-\n", "c/" + K: "resources: [x.yaml]\n", "c/x.yaml": HR},
     hr("a-hr") + "---\n" + hr("b-hr")),
    ("bases are resources", {K: "bases: [c]\n", "c/" + K: "resources: [b.yaml]\n", "c/b.yaml": HR}, HR),
    ("an untargeted patch finds its object by the id it had before a base renamed it",
     {K: "namespace: foo\nresources: [b]\npatches:\n- patch: |\n" + "".join(f"    {line}\n" for line in
                                                                         hr(extra="spec: {x: 1}").splitlines()),
      "b/" + K: "namespace: bar\nnamePrefix: p-\nresources: [b.yaml]\n", "b/b.yaml": HR},
     hr("p-hr", "  namespace: foo\nspec: {x: 1}\n")),
    ("a target's name and namespace match the original id ('' is default)",
     {K: "resources: [b]\npatches:\n- target: {name: hr, namespace: default}\n"
         "  patch: |\n    - {op: add, path: /spec, value: {x: 1}}\n",
      "b/" + K: "namespace: bar\nnamePrefix: p-\nresources: [b.yaml]\n", "b/b.yaml": HR},
     hr("p-hr", "  namespace: bar\nspec: {x: 1}\n")),
    ("target fields are anchored regular expressions",
     {K: "resources: [b.yaml]\npatches:\n- target: {kind: Helm}\n  patch: |\n    - {op: add, path: /spec, value: {x: 1}}\n"
         "- target: {kind: 'Helm.*', name: 'h.'}\n  patch: |\n    - {op: add, path: /spec, value: {y: 1}}\n"
         "- target: {group: helm.toolkit.fluxcd.io, version: v2beta1}\n  patch: |\n    - {op: add, path: /spec/z, value: 1}\n",
      "b.yaml": HR},
     hr(extra="spec: {y: 1}\n")),
    ("label and annotation selectors",
     {K: "resources: [a.yaml]\npatches:\n- target: {labelSelector: 'a in (x, y),!b,c', annotationSelector: 'z!=1'}\n"
         "  patch: |\n    - {op: add, path: /metadata/annotations/hit, value: 'yes'}\n",
      "a.yaml": hr("hr", "  labels: {a: x, c: ''}\n") + "---\n" + hr("h2", "  labels: {a: x, b: q, c: ''}\n")
      + "---\n" + hr("h3", "  labels: {a: x, c: ''}\n  annotations: {z: '1'}\n")},
     hr("hr", "  labels: {a: x, c: ''}\n  annotations: {hit: 'yes'}\n") + "---\n"
     + hr("h2", "  labels: {a: x, b: q, c: ''}\n") + "---\n" + hr("h3", "  labels: {a: x, c: ''}\n  annotations: {z: '1'}\n")),
    ("patchesStrategicMerge files apply in order, the later value winning",
     {K: "resources: [x.yaml]\npatchesStrategicMerge: [p1.yaml, p2.yaml]\n", "x.yaml": hr(extra="spec: {a: 0}\n"),
      "p1.yaml": hr(extra="spec: {a: 1, l: [1]}\n"), "p2.yaml": hr(extra="spec: {a: 2, b: 2, l: [2]}\n")},
     hr(extra="spec: {a: 2, b: 2, l: [2]}\n")),
    ("patchesJson6902 runs after namespace and affixes",
     {K: "namespace: foo\nnamePrefix: p-\nresources: [x.yaml]\npatchesJson6902:\n"
         "- target: {group: helm.toolkit.fluxcd.io, version: v2, kind: HelmRelease, name: hr}\n  patch: |\n"
         "    - {op: test, path: /metadata/namespace, value: foo}\n    - {op: test, path: /metadata/name, value: p-hr}\n"
         "    - {op: add, path: /spec, value: {ok: 1}}\n", "x.yaml": HR},
     hr("p-hr", "  namespace: foo\nspec: {ok: 1}\n")),
    ("a JSON patch under `patches` remembers the id it renamed",
     {K: "resources: [a.yaml]\npatches:\n- target: {kind: HelmRelease}\n  patch: |\n"
         "    - {op: replace, path: /metadata/name, value: new}\n- patch: |\n"
         + "".join(f"    {line}\n" for line in hr(extra="spec: {b: 1}").splitlines()), "a.yaml": HR},
     hr("new", "spec: {b: 1}\n")),
    ("patchesJson6902 does not remember it",
     {K: "resources: [a.yaml]\npatchesJson6902:\n- target: {kind: HelmRelease, name: hr}\n  patch: |\n"
         "    - {op: replace, path: /metadata/name, value: new}\n- target: {kind: HelmRelease, name: hr}\n"
         "  patch: |\n    - {op: add, path: /spec, value: {x: 1}}\n", "a.yaml": HR},
     hr("new")),
    ("allowNameChange and allowKindChange; the namespace stays",
     {K: "resources: [hr.yaml]\npatches:\n- options: {allowNameChange: true, allowKindChange: true}\n"
         "  target: {kind: HelmRelease}\n  patch: |\n    apiVersion: v9\n    kind: Other\n"
         "    metadata: {name: newname, namespace: nsx}\n", "hr.yaml": HR},
     "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: Other\nmetadata: {name: newname}\n"),
    ("$patch: delete by target", {K: "resources: [hr.yaml]\npatches:\n- target: {kind: HelmRelease}\n  patch: |\n"
                                     "    $patch: delete\n    apiVersion: v1\n    kind: X\n    metadata: {name: any}\n",
                                  "hr.yaml": HR}, ""),
    ("a local-config object can be patched, and is left out",
     {K: "resources: [a.yaml]\npatches:\n- patch: |\n" + "".join(f"    {line}\n" for line in hr(extra="spec: {x: 1}").splitlines()),
      "a.yaml": hr(extra="  annotations: {config.kubernetes.io/local-config: 'true'}\n") + "---\n"
      + hr("h2", "  annotations: {config.kubernetes.io/local-config: 'false'}\n")},
     hr("h2", "  annotations: {config.kubernetes.io/local-config: 'false'}\n")),
    ("images rewrite containers at any depth, and again on pod paths",
     {K: "resources: [a.yaml]\nimages: [{name: nginx, tagSuffix: -x}]\n",
      "a.yaml": hr(extra="spec:\n  containers: [{name: a}, {image: nginx}]\n  x: {containers: [{image: nginx}]}\n"
                         "  jobTemplate: {spec: {template: {spec: {containers: [{image: nginx}]}}}}\n")},
     hr(extra="spec:\n  containers: [{name: a}, {image: 'nginx:-x-x'}]\n  x: {containers: [{image: 'nginx:-x'}]}\n"
              "  jobTemplate: {spec: {template: {spec: {containers: [{image: 'nginx:-x'}]}}}}\n")),
    ("images: names are regular expressions; new name, digest, tag",
     {K: "resources: [a.yaml]\nimages: [{name: 'ngin.', newName: 'foo/bar', digest: 'sha256:abc'}, "
         "{name: 'reg:5000/x', newTag: t}]\n",
      "a.yaml": hr(extra="spec:\n  containers: [{image: 'nginx:1@sha256:zz'}, {image: 'reg:5000/x:1'}, "
                         "{image: 'reg:5000/x@sha256:q'}, {image: 5}]\n")},
     hr(extra="spec:\n  containers: [{image: 'foo/bar@sha256:abc'}, {image: 'reg:5000/x:t'}, "
              "{image: 'reg:5000/x:t'}, {image: 5}]\n")),
    ("List kinds are expanded, nested ones too",
     {K: "resources: [a.yaml, b.yaml]\n",
      "a.yaml": "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n"
                "  - {apiVersion: helm.toolkit.fluxcd.io/v2, kind: HelmRelease, metadata: {name: a}}\n",
      "b.yaml": "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmReleaseList\nitems:\n- " + HR.replace("\n", "\n  ")},
     hr("a") + "---\n" + HR),
    ("a generated ConfigMap can be patched (its id is known)",
     {K: "resources: [a.yaml]\nconfigMapGenerator: [{name: x, literals: [a=b]}]\npatches:\n- patch: |\n"
         "    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: x}\n    data: {c: d}\n", "a.yaml": HR},
     HR),
    ("under `patches` or after a namespace, a JSON patch sees an annotations map",
     {K: "namespace: x\nresources: [hr.yaml]\npatchesJson6902:\n- target: {kind: HelmRelease, name: hr}\n  patch: |\n"
         "    - {op: add, path: /metadata/annotations/a, value: b}\n", "hr.yaml": HR},
     hr(extra="  annotations: {a: b}\n  namespace: x\n")),
    ("empty annotations are dropped, empty labels kept",
     {K: "resources: [hr.yaml]\n", "hr.yaml": hr(extra="  annotations: {}\n  labels: {}\n")},
     hr(extra="  labels: {}\n")),
    ("scalars are read as kustomize reads them; anchors may be redefined",
     {K: "resources: [a.yaml]\n",
      "a.yaml": hr(extra="spec:\n  a: yes\n  d: 1.0\n  e: 2024-01-01\n  f: 0o17\n  x: &k 1\n  y: &k 2\n  z: *k\n")},
     hr(extra="spec: {a: 'yes', d: 1, e: '2024-01-01T00:00:00Z', f: 15, x: 1, y: 2, z: 2}\n")),
]


@pytest.mark.parametrize(("case", "files", "expected"), BUILDS, ids=[b[0] for b in BUILDS])
def test_build(case: str, files: dict[str, str], expected: str, tmp_path: Path) -> None:
    rendered = build(tmp_path, files)
    assert rendered.errors == ()
    assert objects(rendered) == expect(expected)


FAILURES: list[tuple[str, dict[str, str], str]] = [
    ("duplicate ids", {K: "resources: [a.yaml, b.yaml]\n", "a.yaml": HR, "b.yaml": HR},
     "may not add resource with an already registered id: HelmRelease.v2.helm.toolkit.fluxcd.io/hr.[noNs]"),
    ("duplicate ids from two directories", {K: "resources: [a, b]\n", "a/" + K: "resources: [hr.yaml]\n", "a/hr.yaml": HR,
                                            "b/" + K: "resources: [hr.yaml]\n", "b/hr.yaml": HR},
     "already registered id"),
    ("'' and default are one namespace", {K: "resources: [a.yaml]\n", "a.yaml": HR + "---\n" + hr(extra="  namespace: default\n")},
     "already registered id"),
    ("a local-config object still counts as a duplicate",
     {K: "resources: [s, a.yaml]\n", "a.yaml": HR, "s/" + K: "resources: [a.yaml]\n",
      "s/a.yaml": hr(extra="  annotations: {config.kubernetes.io/local-config: 'true'}\n")}, "already registered id"),
    ("a missing file", {K: "resources: [nope.yaml]\n"}, "'nope.yaml' is neither a file nor a directory"),
    ("a directory without a kustomization", {K: "resources: [sub]\n", "sub/x.yaml": HR},
     "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization'"),
    ("two kustomization files", {K: "resources: []\n", "kustomization.yml": "resources: []\n"},
     "found multiple kustomization files"),
    ("a path outside the repository", {K: "resources: [../x.yaml]\n"}, "outside the repository"),
    ("a cycle", {K: "resources: [a]\n", "a/" + K: "resources: [..]\n"}, "a cycle"),
    ("bad YAML", {K: "resources: [hr.yaml]\n", "hr.yaml": "a: [\n"}, ""),
    ("no kind", {K: "resources: [a.yaml]\n", "a.yaml": "apiVersion: v1\nmetadata: {name: a}\n"}, "missing kind"),
    ("no name", {K: "resources: [a.yaml]\n", "a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"},
     "missing metadata.name"),
    ("not an object", {K: "resources: [a.yaml]\n", "a.yaml": "- a\n"}, "not a Kubernetes object"),
    ("an unknown kustomization field", {K: "resources: []\nfoo: 1\n"}, 'unknown field "foo"'),
    ("a boolean where a string belongs", {K: "resources: []\nnamePrefix: yes\n"}, "namePrefix must be a string"),
    ("an empty kustomization", {K: "kind: Kustomization\nresources:\n"}, "kustomization.yaml is empty"),
    ("a Component listed as a resource", {K: "resources: [c]\n", "c/" + K: COMPONENT + "resources: []\n"},
     "expected kind != 'Component'"),
    ("a Kustomization listed as a component", {K: "components: [c]\n", "c/" + K: "resources: []\n"},
     "expected kind 'Component'"),
    ("an untargeted patch without its object",
     {K: "resources: [hr.yaml]\npatches:\n- patch: |\n" + "".join(f"    {line}\n" for line in hr("nope").splitlines()),
      "hr.yaml": HR}, "no resource matches strategic merge patch HelmRelease.v2.helm.toolkit.fluxcd.io/nope.[noNs]"),
    ("a JSON patch without a target", {K: "resources: [hr.yaml]\npatches:\n- patch: |\n    - {op: add, path: /spec, value: 1}\n",
                                       "hr.yaml": HR}, "must specify a target"),
    ("two strategic-merge patches under one target",
     {K: "resources: [hr.yaml]\npatches:\n- target: {kind: HelmRelease}\n  patch: |\n" + "".join(
         f"    {line}\n" for line in (HR + "---\n" + HR).splitlines()), "hr.yaml": HR}, "may not have a target"),
    ("a patch that is both", {K: "resources: [hr.yaml]\npatches:\n- patch: '---'\n", "hr.yaml": HR},
     "illegally qualifies as both"),
    ("a patch that is neither", {K: "resources: [hr.yaml]\npatches:\n- patch: 'hello'\n", "hr.yaml": HR},
     "unable to parse SM or JSON patch"),
    ("patchesJson6902 without a target name",
     {K: "resources: [hr.yaml]\npatchesJson6902:\n- target: {kind: HelmRelease}\n  patch: '[]'\n", "hr.yaml": HR},
     "must specify the target name"),
    ("two namespaced objects meet in one namespace",
     {K: "namespace: foo\nresources: [a.yaml]\n", "a.yaml": hr(extra="  namespace: a\n") + "---\n" + hr(extra="  namespace: b\n")},
     "namespace transformation produces ID conflict"),
    ("two Namespaces become one",
     {K: "namespace: foo\nresources: [a.yaml]\n",
      "a.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n"},
     "namespace transformation produces ID conflict"),
    ("replicas that match nothing", {K: "resources: [a.yaml]\nreplicas: [{name: hr, count: 2}]\n", "a.yaml": HR},
     "resource with name hr does not match a config"),
    ("a generator that replaces nothing", {K: "configMapGenerator: [{name: x, behavior: merge, literals: [a=b]}]\n"},
     "does not exist; cannot merge"),
    ("a generator over an existing object",
     {K: "resources: [a.yaml]\nconfigMapGenerator: [{name: x, literals: [a=b]}]\n",
      "a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}, "behavior must be merge or replace"),
    ("a generator file that is missing", {K: "configMapGenerator: [{name: x, files: [nope.txt]}]\n"},
     "'nope.txt' is not a file"),
    ("helmCharts", {K: "helmCharts: [{name: x, repo: 'https://example.com'}]\n"}, "--enable-helm"),
    ("a merge onto the wrong shape",
     {K: "resources: [hr.yaml]\npatches:\n- patch: |\n" + "".join(f"    {line}\n" for line in hr(extra="spec: {x: [1]}").splitlines()),
      "hr.yaml": hr(extra="spec: {x: {a: 1}}\n")}, "wrong node kind: expected MappingNode but got SequenceNode"),
    ("a JSON patch that fails", {K: "resources: [hr.yaml]\npatches:\n- target: {kind: HelmRelease}\n  patch: |\n"
                                    "    - {op: replace, path: /spec/a, value: 1}\n", "hr.yaml": HR},
     "replace operation does not apply"),
]


@pytest.mark.parametrize(("case", "files", "message"), FAILURES, ids=[f[0] for f in FAILURES])
def test_build_refuses_what_kustomize_refuses(case: str, files: dict[str, str], message: str,
                                              tmp_path: Path) -> None:
    rendered = build(tmp_path, files)
    errors = messages(rendered, Severity.ERROR)
    assert errors, "kustomize fails on this directory"
    assert any(message in e for e in errors), errors
    assert all(p.pos is not None and p.pos.path for p in rendered.problems)


def test_a_failure_keeps_the_rest(tmp_path: Path) -> None:
    rendered = build(tmp_path, {K: "resources: [nope.yaml, a.yaml, b.yaml]\n", "a.yaml": HR, "b.yaml": HR})
    assert len(rendered.errors) == 2
    assert list(objects(rendered)) == [("HelmRelease", "", "hr")]


UNSUPPORTED = ["openapi: {path: schema.json}", "crds: [crd.yaml]", "transformers: [t.yaml]", "generators: [g.yaml]", "validators: [v.yaml]",
               "replacements: [{path: r.yaml}]", "vars: [{name: V, objref: {kind: HelmRelease, name: hr, apiVersion: v1}}]",
               "buildMetadata: [originAnnotations]"]


@pytest.mark.parametrize("line", UNSUPPORTED, ids=[u.split(":")[0] for u in UNSUPPORTED])
def test_what_needs_kustomize_is_a_warning_at_its_line(line: str, tmp_path: Path) -> None:
    rendered = build(tmp_path, {K: f"resources: [hr.yaml]\n{line}\n", "hr.yaml": HR})
    field = line.split(":")[0]
    warnings = [p for p in rendered.warnings if NEEDS_KUSTOMIZE in p.message]
    assert [w.message.split(" ")[0] for w in warnings] == [field]
    assert warnings[0].pos is not None and warnings[0].pos.line == 2
    assert rendered.errors == ()
    assert list(objects(rendered)) == [("HelmRelease", "", "hr")]


def test_remote_resources_are_a_warning(tmp_path: Path) -> None:
    rendered = build(tmp_path, {K: "resources:\n- github.com/fluxcd/flux2/manifests/install?ref=v2.4.0\n"
                                   "- https://example.com/crd.yaml\n- hr.yaml\n", "hr.yaml": HR})
    assert [(p.message.split("'")[1], p.pos.line if p.pos else 0) for p in rendered.warnings] == [
        ("github.com/fluxcd/flux2/manifests/install?ref=v2.4.0", 2), ("https://example.com/crd.yaml", 3)]
    assert list(objects(rendered)) == [("HelmRelease", "", "hr")]


GENERATED = (
    "configMapGenerator:\n"
    "- {name: a, literals: [x=1, \"y='q'\", 'z=\"<&>\"', \"u=\\u00fc\\u2028\"]}\n"
    "- {name: b, files: [f.txt, k=f2.txt]}\n"
    "- {name: c, envs: [e.env]}\n"
    "- {name: d, options: {immutable: true, labels: {l: v}}, literals: [x=1]}\n"
    "- {name: e}\n"
    "secretGenerator:\n"
    "- {name: s, literals: [x=1]}\n"
    "- {name: s2, type: kubernetes.io/tls, literals: [tls.crt=a, tls.key=b], options: {immutable: true}}\n"
    "generatorOptions: {labels: {g: v}, annotations: {ga: v}}\n")


def test_generators_make_what_kustomize_makes(tmp_path: Path) -> None:
    rendered = build(tmp_path, {K: GENERATED, "f.txt": "hello\n\tworld \b\n", "f2.txt": "x: 1\n",
                                "e.env": "\ufeffA=1\n# c\n\n  B = 2 \nC=\"q\"\nHOME\n"}, keep=None)
    assert rendered.problems == ()
    built = objects(rendered)
    assert sorted(name for _, _, name in built) == [
        "a-tfd76k5k29", "b-md287gk9bb", "c-75t6bh2425", "d-hmg6f82fh6", "e-6ct58987ht", "s-bf2648c599",
        "s2-m6h7bkm2dg"]
    assert built[("ConfigMap", "", "a-tfd76k5k29")]["data"] == {"x": "1", "y": "q", "z": "<&>", "u": "\u00fc\u2028"}
    assert built[("ConfigMap", "", "c-75t6bh2425")]["data"] == {"A": "1", "B ": " 2 ", "C": '"q"', "HOME": ""}
    assert built[("ConfigMap", "", "d-hmg6f82fh6")]["metadata"]["labels"] == {"l": "v", "g": "v"}
    assert built[("Secret", "", "s2-m6h7bkm2dg")]["data"] == {"tls.crt": "YQ==", "tls.key": "Yg=="}
    assert "data" not in built[("ConfigMap", "", "e-6ct58987ht")]
    assert list(objects(build(tmp_path, {K: GENERATED}))) == []


def test_non_utf8_files_become_binary_data(tmp_path: Path) -> None:
    tree = write(tmp_path, {K: "configMapGenerator: [{name: bin, files: [bin.dat]}]\n"})
    (tmp_path / "bin.dat").write_bytes(b"\xff\x00")
    (item,) = build_directory(RepoTree(tmp_path), "", keep=None).objects
    assert item.manifest.body["metadata"]["name"] == "bin-mcmmk4dhf7"
    assert item.manifest.body["binaryData"] == {"bin.dat": "/wA="}
    assert item.file == "kustomization.yaml" and item.pos.line == 1 and tree.is_file(K)


def test_generators_merge_and_replace_what_a_base_made(tmp_path: Path) -> None:
    files = {K: "resources: [b]\nconfigMapGenerator:\n- {name: x, behavior: merge, literals: [b=2], "
                "options: {labels: {o: v}}}\n",
             "b/" + K: "namePrefix: p-\nconfigMapGenerator: [{name: x, literals: [a=1, b=1], options: {labels: {i: v}}}]\n"}
    (cm,) = objects(build(tmp_path, files, keep=None)).values()
    assert (cm["metadata"]["name"], cm["data"], cm["metadata"]["labels"]) == (
        "p-x-7gdc49gk6d", {"a": "1", "b": "2"}, {"i": "v", "o": "v"})


NAME_REFERENCE = ("nameReference:\n- kind: ConfigMap\n  version: v1\n  fieldSpecs:\n"
                  "  - {path: spec/valuesFrom/name, kind: HelmRelease}\n  - {path: spec/ref, kind: HelmRelease}\n"
                  "  - {path: spec/refs, kind: HelmRelease}\n")


def test_configurations_name_references_follow_renames(tmp_path: Path) -> None:
    """The home-ops pattern: a HelmRelease takes its values from a generated ConfigMap."""
    files = {K: "namePrefix: p-\nresources: [hr.yaml]\nconfigMapGenerator:\n- {name: vals, literals: [a=1]}\n"
                "- {name: other, options: {disableNameSuffixHash: true}, literals: [a=1]}\n"
                "configurations: [kc.yaml]\n",
             "kc.yaml": NAME_REFERENCE,
             "hr.yaml": hr(extra="spec:\n  valuesFrom:\n  - {kind: ConfigMap, name: vals}\n  - {kind: Secret, name: vals}\n"
                                 "  - {kind: ConfigMap, name: unknown}\n  ref: {name: other}\n"
                                 "  refs: [vals, {name: other, namespace: x}]\n")}
    rendered = build(tmp_path, files)
    assert rendered.problems == ()
    assert objects(rendered) == expect(hr("p-hr", (
        "spec:\n  valuesFrom:\n  - {kind: ConfigMap, name: p-vals-h29d89cmmt}\n  - {kind: Secret, name: p-vals-h29d89cmmt}\n"
        "  - {kind: ConfigMap, name: unknown}\n  ref: {name: p-other}\n  refs: [p-vals-h29d89cmmt, {name: other, namespace: x}]\n")))


def test_configurations_from_a_base_apply_at_the_top(tmp_path: Path) -> None:
    files = {K: "resources: [app]\nnamespace: flux\n",
             "app/" + K: "resources: [hr.yaml]\nconfigMapGenerator: [{name: vals, files: [values.yaml]}]\n"
                         "configurations: [kc.yaml]\n",
             "app/values.yaml": "a: 1\n", "app/kc.yaml": NAME_REFERENCE,
             "app/hr.yaml": hr(extra="spec:\n  valuesFrom: [{kind: ConfigMap, name: vals}]\n")}
    assert objects(build(tmp_path, files)) == expect(
        hr(extra="  namespace: flux\nspec:\n  valuesFrom: [{kind: ConfigMap, name: vals-2c7b8tcg92}]\n"))


def test_configurations_beyond_name_references_warn(tmp_path: Path) -> None:
    files = {K: "resources: [hr.yaml]\nconfigurations: [kc.yaml]\n",
             "kc.yaml": "images:\n- {path: spec/image, kind: HelmRelease}\n", "hr.yaml": HR}
    assert [p.message for p in build(tmp_path, files).problems] == [
        f"configurations: kc.yaml: images {NEEDS_KUSTOMIZE}"]
    assert messages(build(tmp_path / "missing", {K: "resources: []\nconfigurations: [kc.yaml]\n"}),
                    Severity.ERROR) == ["configurations: 'kc.yaml' is not a file in the repository"]


def test_keep_filters_but_the_others_still_count(tmp_path: Path) -> None:
    files = {K: "resources: [a.yaml]\npatches:\n- patch: |\n    apiVersion: v1\n    kind: ConfigMap\n"
                "    metadata: {name: cm}\n    data: {x: y}\n",
             "a.yaml": HR + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"}
    kept = build(tmp_path, files)
    assert kept.errors == () and list(objects(kept)) == [("HelmRelease", "", "hr")]
    everything = build(tmp_path, files, keep=None)
    assert objects(everything)[("ConfigMap", "", "cm")]["data"] == {"x": "y"}


def test_flux_kustomization_given_instead_of_the_file(tmp_path: Path) -> None:
    """The lead passes Flux's kustomization (render.flux_kustomization) for a path."""
    tree = write(tmp_path, {"apps/" + K: "resources: [hr.yaml]\nnamespace: file\n", "apps/hr.yaml": HR})
    kus = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
           "resources": ["hr.yaml"], "namespace": "flux"}
    rendered = build_directory(tree, "apps", kustomization=kus, keep=flux_kinds)
    assert list(objects(rendered)) == [("HelmRelease", "flux", "hr")]
    kus["resources"] = ["hr.yaml", "missing.yaml"]
    errors = build_directory(tree, "apps", kustomization=kus, keep=flux_kinds).errors
    # the first entry is written in the file, the second only in the given kustomization
    assert [(e.pos.path if e.pos else "", e.pos.line if e.pos else 0) for e in errors] == [
        (tree.display("apps"), 0)]


def test_objects_are_located_in_their_original_file(tmp_path: Path) -> None:
    tree = write(tmp_path, {K: "namespace: x\nresources: [b]\n", "b/" + K: "resources: [a.yaml]\n",
                            "b/a.yaml": "# comment\n---\n" + hr("one") + "---\n" + hr("two")})
    rendered = build_directory(tree, "", keep=flux_kinds)
    assert [(o.file, o.document, o.pos.line, o.manifest.origin) for o in rendered.objects] == [
        ("b/a.yaml", 1, 3, "b/a.yaml: document 1"), ("b/a.yaml", 2, 8, "b/a.yaml: document 2")]


def test_errors_point_at_the_kustomization_line(tmp_path: Path) -> None:
    rendered = build(tmp_path, {K: "namespace: x\nresources:\n  - hr.yaml\n  - nope.yaml\n", "hr.yaml": HR})
    (error,) = rendered.errors
    assert error.pos is not None and (error.pos.line, error.pos.column) == (4, 5)


class CountingTree:
    """A tree that reads files anew each time it is asked, counting the reads."""

    def __init__(self, tree: RepoTree) -> None:
        self.tree = tree
        self.reads: dict[str, int] = {}

    def is_file(self, rel: str) -> bool:
        return self.tree.is_file(rel)

    def is_dir(self, rel: str) -> bool:
        return self.tree.is_dir(rel)

    def text(self, rel: str, problems: Problems | None = None) -> str | None:
        self.reads[rel] = self.reads.get(rel, 0) + 1
        return (self.tree.root / rel).read_text(encoding="utf-8")

    def display(self, rel: str) -> str:
        return self.tree.display(rel)

    def refusal(self, rel: str) -> str | None:
        return self.tree.refusal(rel)


def test_files_are_parsed_once_per_tree(tmp_path: Path) -> None:
    tree = CountingTree(write(tmp_path, {"base/" + K: "resources: [big.yaml]\n", "base/big.yaml": HR,
                                         "a/" + K: "resources: [../base]\nnamePrefix: a-\n",
                                         "b/" + K: "resources: [../base]\nnamePrefix: b-\n"}))
    for directory in ("a", "b", "a"):
        assert len(build_directory(tree, directory, keep=flux_kinds).objects) == 1
    assert tree.reads == {"a/" + K: 1, "base/" + K: 1, "base/big.yaml": 1, "b/" + K: 1}


def test_results_are_copies(tmp_path: Path) -> None:
    tree = write(tmp_path, {K: "resources: [hr.yaml]\n", "hr.yaml": hr(extra="spec: {a: 1}\n")})
    first = build_directory(tree, "", keep=flux_kinds).objects[0].manifest.body
    first["spec"]["a"] = 2  # type: ignore[index]
    again = build_directory(tree, "", keep=flux_kinds).objects[0].manifest.body
    assert again["spec"] == {"a": 1}
