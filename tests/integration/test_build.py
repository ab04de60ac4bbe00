"""`gitward build kustomization` against the real kustomize: the same objects Flux would apply.

Every expectation that involves kustomize is checked against kustomize itself: a reference
build copies the tree, writes the kustomization kustomize-controller generates (FIFO order, as
Flux builds) and runs `kubectl kustomize` (or `kustomize build`) on it. Both gitward paths
(plain files in Python, kustomize for the rest) must give exactly its objects.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from engine.cli.build import build
from engine.errors import Problems, RuleError, UserError
from engine.evaluate import kubeyaml
from engine.model import (
    ImageOverride,
    Kustomization,
    Manifest,
    Patch,
    Selector,
    SourceRef,
    SubstituteFrom,
)
from engine.observe.kustomize import KustomizeFailed, KustomizeNotFound, clean_message, find_kustomizer
from engine.reconcile.build import BuildResult, build_kustomization
from engine.rules.load import load_repo
from tests.conftest import EXAMPLES, require

OWNER = ("kustomize.toolkit.fluxcd.io/name", "kustomize.toolkit.fluxcd.io/namespace")
KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@pytest.fixture
def kustomize_binary() -> list[str]:
    """The kustomize command line for reference builds (and proof that gitward has one)."""
    binary = shutil.which("kustomize")
    kubectl = shutil.which("kubectl")
    require(bool(binary or kubectl), "neither kustomize nor kubectl is on PATH")
    return [binary, "build"] if binary else [str(kubectl), "kustomize"]


def flux_resources(directory: Path) -> list[str]:
    """kustomize-controller's generated `resources`, written independently of engine/."""
    entries: list[str] = []

    def walk(current: Path) -> None:
        for entry in sorted(os.listdir(current)):
            path = current / entry
            if path.is_dir():
                if any((path / name).is_file() for name in KUSTOMIZATIONS):
                    entries.append(f"./{path.relative_to(directory).as_posix()}")
                else:
                    walk(path)
            elif entry.endswith((".yaml", ".yml")):
                entries.append(f"./{path.relative_to(directory).as_posix()}")

    walk(directory)
    return entries


def reference(tree: Path, path: str, tmp_path: Path, command: list[str]) -> list[dict[str, Any]]:
    """The objects kustomize builds from `tree/path` with Flux's generated kustomization."""
    copy = tmp_path / "reference"
    shutil.copytree(tree, copy, ignore=shutil.ignore_patterns(".git"))
    target = copy / path
    if not any((target / name).is_file() for name in KUSTOMIZATIONS):
        kus = {"resources": flux_resources(target), "sortOptions": {"order": "fifo"}}
        (target / "kustomization.yaml").write_text(yaml.safe_dump(kus))
    out = subprocess.run([*command, "--load-restrictor", "LoadRestrictionsNone", str(target)],
                         capture_output=True, text=True, check=True).stdout
    return [doc.value for doc in kubeyaml.read_documents("reference", out, v2=True)]  # type: ignore[misc]


def without_owner(manifests: tuple[Manifest, ...]) -> list[dict[str, Any]]:
    out = []
    for m in manifests:
        meta = dict(m.metadata)
        labels = {k: v for k, v in meta["labels"].items() if k not in OWNER}  # type: ignore[attr-defined]
        if labels:
            meta["labels"] = labels
        else:
            del meta["labels"]
        out.append({**m.body, "metadata": meta})
    return out


def ks(path: str = "./cluster", **fields: object) -> Kustomization:
    return Kustomization(name="apps", source_ref=SourceRef("flux-system"), path=path,
                         **fields)  # type: ignore[arg-type]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def flux_kustomization(root: Path, name: str = "flux-system") -> Kustomization:
    problems = Problems()
    rules = load_repo(root, problems).rules
    problems.raise_if_errors()
    return next(k for k in rules.kustomizations if k.name == name)


# The example repository and the user's real one --------------------------------------------


def test_examples_homelab_renders_in_python_exactly_as_kustomize(
        tmp_path: Path, kustomize_binary: list[str]) -> None:
    root = EXAMPLES / "homelab"
    result = build_kustomization(root, flux_kustomization(root))
    assert result.kustomize == ""
    assert len(result.manifests) == 20
    assert without_owner(result.manifests) == reference(root, "cluster", tmp_path, kustomize_binary)
    assert result.manifests[0].origin == "cluster/apps/ledger/deployment.yaml: document 1"
    labels = [m.metadata["labels"] for m in result.manifests]
    assert all(label[OWNER[0]] == "flux-system" for label in labels)  # type: ignore[index]


def test_the_users_repository_gives_exactly_the_objects_flux_would_apply(
        homelab_corpus: Path, tmp_path: Path, kustomize_binary: list[str]) -> None:
    ks_ = flux_kustomization(homelab_corpus)
    result = build_kustomization(homelab_corpus, ks_)
    expected = reference(homelab_corpus, "cluster", tmp_path, kustomize_binary)
    mine = without_owner(result.manifests)
    assert result.kustomize != ""
    assert len(mine) == len(expected) == 190
    assert [Manifest(b).id for b in mine] == [Manifest(b).id for b in expected]
    assert mine == expected
    flux = {m.name: m for m in result.manifests if m.namespace == "flux-system" and m.kind == "Deployment"}
    for name in ("helm-controller", "image-automation-controller", "kustomize-controller",
                 "notification-controller", "image-reflector-controller"):
        container = flux[name].body["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
        assert container["resources"]["requests"]["cpu"] == "30m"
    assert flux["source-controller"].origin.startswith(
        "cluster/system/flux-system/gotk-components.yaml: document ")
    assert any(m.kind == "HelmRelease" for m in result.manifests)
    assert not any(m.origin.endswith((".md", ".sh", ".conf", ".template")) for m in result.manifests)
    annotations = [m.metadata.get("annotations") or {} for m in result.manifests]
    assert all("config.kubernetes.io/origin" not in a for a in annotations)  # type: ignore[operator]


# The Python path reads YAML as kustomize does ----------------------------------------------

TRICKY = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: &n tricky
  labels:
    <<: {merged: "1"}
    name: *n
data:
  b1: yes
  b2: on
  b3: y
  i1: 0o17
  i2: 1_000
  i3: 1:30
  i4: 08
  f1: 1e3
  f2: 1.0
  t1: 2001-12-14
  t2: 2001-12-14t21:59:43.10-05:00
  s1: 1e400
  s2: "0755"
  n1: ~
---
apiVersion: v1
kind: SecretList
items:
- apiVersion: v1
  kind: Secret
  metadata: {name: one}
  stringData: {a: b}
- null
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: local
  annotations:
    config.kubernetes.io/local-config: "true"
"""


def test_plain_yaml_is_read_as_kustomize_reads_it(
        tmp_path: Path, kustomize_binary: list[str]) -> None:
    root = write(tmp_path / "repo", {"cluster/tricky.yaml": TRICKY, "cluster/README.md": "# no\n",
                                     "cluster/sub/empty.yml": "# nothing yet\n"})
    result = build_kustomization(root, ks())
    assert result.kustomize == ""
    assert [m.name for m in result.manifests] == ["tricky", "one"]
    assert without_owner(result.manifests) == reference(root, "cluster", tmp_path, kustomize_binary)


def test_an_empty_tree_renders_nothing(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"cluster/notes.txt": "nothing\n"})
    assert build_kustomization(root, ks()).manifests == ()


# Directories kustomize must build -----------------------------------------------------------

APP = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        envFrom:
        - configMapRef: {name: cfg}
"""

SUB = {
    "cluster/sub/kustomization.yaml": "namePrefix: p-\nresources: [cm.yaml]\n"
                                      "configMapGenerator:\n- name: cfg\n  literals: [a=b]\n",
    "cluster/sub/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: static\n",
}


def test_a_sub_directory_with_a_kustomization_is_built_by_kustomize_with_the_rest(
        tmp_path: Path, kustomize_binary: list[str]) -> None:
    root = write(tmp_path / "repo", {"cluster/app.yaml": APP, **SUB})
    result = build_kustomization(root, ks())
    assert result.kustomize != ""
    assert without_owner(result.manifests) == reference(root, "cluster", tmp_path, kustomize_binary)
    by_kind = {m.kind + "/" + m.name: m for m in result.manifests}
    generated = next(m for m in result.manifests if m.name.startswith("p-cfg-"))
    deployment = by_kind["Deployment/web"]
    container = deployment.body["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["envFrom"][0]["configMapRef"]["name"] == generated.name
    assert deployment.origin == "cluster/app.yaml: document 1"
    assert by_kind["ConfigMap/p-static"].origin == "cluster/sub/cm.yaml: document 1"
    assert generated.origin == "cluster/sub/kustomization.yaml: ConfigMapGenerator"
    assert all("annotations" not in m.metadata for m in result.manifests)


def test_overlays_go_through_kustomize_as_flux_writes_them(
        tmp_path: Path, kustomize_binary: list[str]) -> None:
    root = write(tmp_path / "repo", {"cluster/app.yaml": APP,
                                     "cluster/cm.yaml": SUB["cluster/sub/cm.yaml"]})
    k = ks(target_namespace="team", name_prefix="p-", name_suffix="-s",
           images=(ImageOverride("nginx", new_name="registry.local/nginx", new_tag="1.27"),),
           patches=(Patch("- op: add\n  path: /spec/replicas\n  value: 3\n", Selector(kind="Deployment")),
                    Patch("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: static\ndata:\n  k: v\n")),
           common_labels=(("team", "a"),), common_annotations=(("owner", "me"),),
           substitute=(("UNUSED", "x"),))
    result = build_kustomization(root, k)
    deployment, cm = result.manifests
    assert (deployment.namespace, deployment.name) == ("team", "p-web-s")
    spec = deployment.body["spec"]
    assert spec["replicas"] == 3  # type: ignore[index]
    container = spec["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["image"] == "registry.local/nginx:1.27"
    assert cm.body["data"] == {"k": "v"} and cm.name == "p-static-s"
    assert cm.metadata["labels"] == {"team": "a", OWNER[0]: "apps", OWNER[1]: "flux-system"}
    assert cm.metadata["annotations"] == {"owner": "me"}


def test_the_users_kustomization_file_is_built_and_never_written(
        tmp_path: Path, kustomize_binary: list[str]) -> None:
    files = {"cluster/kustomization.yml": "resources: [app.yaml]\n", "cluster/app.yaml": APP,
             "cluster/ignored.yaml": SUB["cluster/sub/cm.yaml"]}
    root = write(tmp_path / "repo", files)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = build_kustomization(root, ks(target_namespace="team"))
    assert [(m.kind, m.namespace, m.name) for m in result.manifests] == [("Deployment", "team", "web")]
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_ignored_files_are_not_rendered_on_either_path(
        tmp_path: Path, kustomize_binary: list[str]) -> None:
    root = write(tmp_path / "repo", {"cluster/app.yaml": APP, "cluster/draft.yaml": "{broken",
                                     ".sourceignore": "cluster/draft.yaml\n"})
    assert [m.name for m in build_kustomization(root, ks()).manifests] == ["web"]
    write(root, SUB)
    assert len(build_kustomization(root, ks()).manifests) == 3


# Errors -------------------------------------------------------------------------------------


def test_kustomize_errors_are_passed_on_with_the_directory_and_the_checkouts_paths(
        tmp_path: Path, kustomize_binary: list[str]) -> None:
    root = write(tmp_path / "repo", {"cluster/app.yaml": APP,
                                     "cluster/sub/kustomization.yaml": "resources: [missing.yaml]\n"})
    with pytest.raises(KustomizeFailed) as caught:
        build_kustomization(root, ks())
    assert caught.value.directory == str(root / "cluster")
    message = str(caught.value)
    assert message.startswith(f"kustomize build {root / 'cluster'}: ")
    assert "missing.yaml" in message and "gitward-build-" not in message
    assert f"{root}/cluster/sub" in message


def test_a_duplicate_between_a_file_and_a_kustomization_names_the_file(
        tmp_path: Path, kustomize_binary: list[str]) -> None:
    root = write(tmp_path / "repo", {"cluster/a.yaml": SUB["cluster/sub/cm.yaml"],
                                     "cluster/sub/kustomization.yaml": "resources: [cm.yaml]\n",
                                     "cluster/sub/cm.yaml": SUB["cluster/sub/cm.yaml"]})
    with pytest.raises(KustomizeFailed, match="ConfigMap/static is defined in cluster/a.yaml: document 1"):
        build_kustomization(root, ks())


def test_bad_plain_files_fail_before_kustomize_with_located_errors(
        tmp_path: Path, kustomize_binary: list[str]) -> None:
    root = write(tmp_path / "repo", {"cluster/x/deploy.yaml": APP + "---\nkind: a: b\n", **SUB,
                                     "cluster/y.yaml": "apiVersion: v1\nmetadata: {name: a}\n"})
    with pytest.raises(RuleError) as caught:
        build_kustomization(root, ks())
    rendered = [(str(p.pos), p.message) for p in caught.value.problems]
    assert rendered == [
        (f"{root}/cluster/x/deploy.yaml:16:8", "document 2: mapping values are not allowed here"),
        (f"{root}/cluster/y.yaml:1:1", "document 1: missing kind"),
    ]


def test_a_path_outside_the_repository_or_missing_is_refused(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"cluster/app.yaml": APP})
    with pytest.raises(UserError, match="leaves the repository"):
        build_kustomization(root, ks("../elsewhere"))
    with pytest.raises(UserError, match="is not a directory"):
        build_kustomization(root, ks("./nope"))


def test_the_real_kustomize_never_reads_outside_the_repository(tmp_path: Path,
                                                              kustomize_binary: list[str]) -> None:
    """Flux builds on a file system confined to the source's root; gitward checks every path a
    kustomization names before kustomize runs, so nothing outside is read or printed."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "cm.yaml").write_text(APP, encoding="utf-8")
    (tmp_path / "outside" / "secret.txt").write_text("s3cret", encoding="utf-8")
    kustomization = ("resources:\n- ../../outside/cm.yaml\n- linked.yaml\nconfigMapGenerator:\n"
                     "- name: x\n  files:\n  - k=/etc/passwd\n  envs:\n  - ../../outside/secret.txt\n")
    root = write(tmp_path / "repo", {"cluster/kustomization.yaml": kustomization})
    os.symlink("../../outside/cm.yaml", root / "cluster" / "linked.yaml")
    with pytest.raises(RuleError) as caught:
        build_kustomization(root, ks("./cluster"))
    shown = str(root / "cluster" / "kustomization.yaml")
    assert [(p.pos.path, p.pos.line, p.message) for p in caught.value.problems if p.pos] == [
        (shown, 2, "resources: '../../outside/cm.yaml' is outside the repository"),
        (shown, 3, "resources: 'linked.yaml' is a symbolic link that resolves outside the repository: "
                   "refused, as source-controller confines a source to its tree (the target is not read)"),
        (shown, 5, "configMapGenerator: '../../outside/secret.txt' is outside the repository"),
        (shown, 5, "configMapGenerator: '/etc/passwd' is an absolute path: the repository is all a build "
                   "may read"),
    ]
    assert "s3cret" not in str(caught.value) and "root:x:0:0" not in str(caught.value)


def test_without_kustomize_plain_trees_still_render_and_others_say_what_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write(tmp_path / "repo", {"cluster/app.yaml": APP})
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(KustomizeNotFound, match="neither `kustomize` nor `kubectl` is on PATH"):
        find_kustomizer(path=str(empty))
    monkeypatch.setenv("PATH", str(empty))
    assert [m.name for m in build_kustomization(root, ks()).manifests] == ["web"]
    write(root, SUB)
    with pytest.raises(KustomizeNotFound):
        build_kustomization(root, ks())


def test_substitute_from_is_a_warning_offline(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"cluster/app.yaml": APP.replace("nginx:1.25", "nginx:${TAG:=1.25}")})
    result: BuildResult = build_kustomization(
        root, ks(substitute=(("OTHER", "x"),), substitute_from=(SubstituteFrom("ConfigMap", "vars"),)))
    [warning] = result.warnings
    assert "postBuild.substituteFrom ConfigMap/vars is read from the cluster" in warning.message
    container = result.manifests[0].body["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["image"] == "nginx:1.25"


# The command --------------------------------------------------------------------------------


def test_kubectls_klog_framing_is_removed_from_kustomize_errors() -> None:
    quoted = ('E1126 03:09:46.271485   26845 run.go:72] "command failed" err="accumulating '
              "resources: accumulation err='accumulating resources from 'a.yaml': missing kind "
              'in object {{v1 } {{x } map[] map[]}}\\n\\"quoted\\""')
    assert clean_message(quoted) == ("accumulating resources: accumulation err='accumulating "
                                     "resources from 'a.yaml': missing kind in object "
                                     '{{v1 } {{x } map[] map[]}}\n"quoted"')
    block = ('E1126 03:09:46.529215   26874 run.go:72] "command failed" err=<\n'
             "\tmap[string]interface {}(nil): yaml: unmarshal errors:\n"
             '\t  line 5: mapping key "name" already defined at line 4\n >\n')
    assert clean_message(block) == ('map[string]interface {}(nil): yaml: unmarshal errors:\n'
                                    'line 5: mapping key "name" already defined at line 4')
    assert clean_message("Error: must build at directory: not a valid directory\n") == (
        "must build at directory: not a valid directory")


def test_the_command_prints_yaml_documents_or_a_json_list(tmp_path: Path) -> None:
    runner = CliRunner()
    root = str(EXAMPLES / "homelab")
    as_yaml = runner.invoke(build, ["kustomization", "flux-system", "--repo", root])
    assert as_yaml.exit_code == 0, as_yaml.output
    docs = [d.value for d in kubeyaml.read_documents("out", as_yaml.stdout, v2=True)]
    as_json = runner.invoke(build, ["kustomization", "flux-system/flux-system", "--repo", root,
                                    "-o", "json"])
    assert json.loads(as_json.stdout) == docs and len(docs) == 20
    missing = runner.invoke(build, ["kustomization", "nope", "--repo", root])
    assert isinstance(missing.exception, UserError)
    assert "Kustomization flux-system/nope not found" in str(missing.exception)
