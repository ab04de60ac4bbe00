"""Repositories read as Flux reads them: one small tree per way real repositories were refused.

Each test builds the smallest repository that shows one class of problem seen in public Flux
repositories, and runs the CLI on it as a user would.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from textwrap import dedent

import pytest

from engine.cli import main

SYNC = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: flux-system, namespace: flux-system}}
spec:
  interval: 1m0s
  ref: {{branch: main}}
  url: ssh://git@github.com/example/fleet
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: flux-system, namespace: flux-system}}
spec:
  interval: 10m0s
  path: ./{path}
  prune: true
  sourceRef: {{kind: GitRepository, name: flux-system}}
"""


def ks(name: str, path: str, *, namespace: str | None = None, source: str = "flux-system",
       source_kind: str = "GitRepository", depends: str = "", extra: str = "") -> str:
    meta = f"{{name: {name}, namespace: {namespace}}}" if namespace else f"{{name: {name}}}"
    dep = f"  dependsOn: [{{name: {depends}}}]\n" if depends else ""
    return (f"apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {meta}\n"
            f"spec:\n  interval: 10m\n  path: {path}\n  prune: true\n"
            f"  sourceRef: {{kind: {source_kind}, name: {source}, namespace: flux-system}}\n"
            f"{dep}{extra}")


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text) if text.startswith("\n") else text)
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def kustomization_names(capsys: pytest.CaptureFixture[str], repo: Path, *extra: str) -> set[str]:
    code, out, err = run(capsys, "get", "kustomizations", "-A", "-o", "json", "--repo", str(repo),
                         *extra)
    assert code == 0, err
    return {f"{r['namespace']}/{r['name']}" for r in json.loads(out)}


CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"


def test_a_bootstrap_created_source_is_taken_from_the_checkout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write(tmp_path / "repo", {
        "kubernetes/flux/cluster/ks.yaml": ks("cluster-apps", "./kubernetes/apps", namespace="flux-system"),
        "kubernetes/apps/settings.yaml": CONFIGMAP,
    })
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin",
                    "https://user:s3cret@git.example.com/me/home-ops.git"], check=True)
    code, report, err = run(capsys, "check", "--repo", str(repo))
    assert code == 0, report + err
    assert ("note: GitRepository flux-system/flux-system is not in git (flux bootstrap creates it "
            "in the cluster): taken as https://git.example.com/me/home-ops.git#main") in report
    assert "s3cret" not in report
    code, out, err = run(capsys, "get", "sources", "git", "--repo", str(repo))
    assert code == 0 and "flux-system" in out

    code, report, err = run(capsys, "check", "--repo", str(repo), "--source",
                       "flux-system=https://git.example.com/me/fork.git#dev")
    assert code == 0
    assert "taken from --source as https://git.example.com/me/fork.git#dev" in report
    code, _, err = run(capsys, "check", "--repo", str(repo), "--source", "no equals sign")
    assert code == 2 and "expected NAME=URL#BRANCH" in err


def test_one_unsupported_object_blocks_nothing_else(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    repo = write(tmp_path, {
        "clusters/prod/flux-system/gotk-sync.yaml": SYNC.format(path="clusters/prod"),
        "clusters/prod/infra.yaml": ks("infra", "./controllers", namespace="flux-system",
                                       source="infrastructure", source_kind="ExternalArtifact"),
        "clusters/prod/apps.yaml": ks("apps", "./apps", namespace="flux-system"),
        "clusters/prod/chart.yaml": ("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\n"
                                     "metadata: {name: podinfo, namespace: apps}\nspec: {}\n"),
        "apps/settings.yaml": CONFIGMAP.replace("settings}", "settings, namespace: apps}"),
    })
    code, report, err = run(capsys, "check", "--repo", str(repo))
    assert code == 0, report + err
    assert "its source is ExternalArtifact flux-system/infrastructure, which gitward does not fetch" in report
    code, out, _ = run(capsys, "build", "kustomization", "apps", "--repo", str(repo))
    assert code == 0 and "name: settings" in out
    code, out, _ = run(capsys, "get", "all", "-A", "--repo", str(repo))
    assert code == 0 and "podinfo" in out and "not reconciled by gitward" in out
    code, _, err = run(capsys, "build", "kustomization", "infra", "--repo", str(repo))
    assert code == 1 and "ExternalArtifact flux-system/infrastructure, which is not reconciled" in err
    code, _, _ = run(capsys, "plan", "--offline", "--repo", str(repo))
    assert code == 0


def test_kustomize_namespace_and_listing_decide_what_is_live(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write(tmp_path, {
        "cluster/flux-system/gotk-sync.yaml": SYNC.format(path="cluster"),
        "cluster/flux-system/kustomization.yaml": "resources: [gotk-sync.yaml]\n",
        "cluster/flux-system/image-update-automation.yaml": (
            "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageUpdateAutomation\n"
            "metadata: {name: flux-system, namespace: flux-system}\n"
            "spec: {interval: 1m, sourceRef: {kind: GitRepository, name: flux-system},\n"
            "  git: {commit: {author: {email: a@b.c}}}}\n"),
        "cluster/apps.yaml": ks("apps", "./apps", namespace="flux-system"),
        "apps/kustomization.yaml": "namespace: ai\nresources: [ollama.yaml, webui.yaml]\n",
        "apps/ollama.yaml": ks("ollama", "./ollama", namespace="flux-system"),
        "apps/webui.yaml": ks("webui", "./webui", depends="ollama"),
        "ollama/cm.yaml": CONFIGMAP.replace("settings}", "settings, namespace: ai}"),
        "webui/cm.yaml": CONFIGMAP.replace("settings}", "ui, namespace: ai}"),
        "apps/unlisted.yaml": ks("forgotten", "./nowhere"),
    })
    code, report, err = run(capsys, "check", "--repo", str(repo))
    assert code == 0, report + err
    names = kustomization_names(capsys, repo)
    assert names == {"flux-system/flux-system", "flux-system/apps", "ai/ollama", "ai/webui"}
    code, out, _ = run(capsys, "get", "images", "update", "-A", "-o", "json", "--repo", str(repo))
    assert code == 0 and json.loads(out) == []  # its file is listed by no kustomization


def test_a_patch_file_is_not_an_object_and_hidden_directories_are_not_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write(tmp_path, {
        "tenants/base/sync.yaml": ks("dev-team", "./base", namespace="apps"),
        "tenants/base/source.yaml": ("apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
                                     "metadata: {name: flux-system, namespace: flux-system}\n"
                                     "spec: {interval: 1m, url: 'https://example.com/x', ref: {branch: main}}\n"),
        "tenants/base/kustomization.yaml": "resources: [sync.yaml, source.yaml]\n",
        "tenants/prod/kustomization.yaml": "resources: [../base]\npatches: [{path: dev-team-patch.yaml}]\n",
        "tenants/prod/dev-team-patch.yaml": ("apiVersion: kustomize.toolkit.fluxcd.io/v1\n"
                                             "kind: Kustomization\nmetadata: {name: dev-team, "
                                             "namespace: apps}\nspec: {path: ./prod}\n"),
        ".archive/old.yaml": ks("old", "./old", extra="  bogus: field\n"),
    })
    code, report, err = run(capsys, "check", "--repo", str(repo))
    assert code == 0, report + err
    assert "spec.interval is required" not in report and ".archive" not in report


def test_several_clusters_have_names_of_their_own(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    files: dict[str, str] = {}
    for env in ("production", "staging"):
        files[f"clusters/{env}/flux-system/gotk-sync.yaml"] = SYNC.format(path=f"clusters/{env}")
        files[f"clusters/{env}/apps.yaml"] = ks("apps", f"./apps/{env}", namespace="flux-system")
        files[f"apps/{env}/cm.yaml"] = CONFIGMAP.replace("settings}", f"{env}, namespace: apps}}")
    repo = write(tmp_path, files)
    code, report, err = run(capsys, "check", "--repo", str(repo))
    assert code == 0, report + err
    assert "cluster clusters/production, cluster clusters/staging" in report
    code, out, _ = run(capsys, "get", "kustomizations", "--repo", str(repo))
    assert code == 0 and "cluster clusters/production:" in out and "cluster clusters/staging:" in out
    code, _, err = run(capsys, "build", "kustomization", "apps", "--repo", str(repo))
    assert code == 2 and "defined in several clusters" in err and "--cluster" in err
    code, out, _ = run(capsys, "build", "kustomization", "apps", "--repo", str(repo),
                       "--cluster", str(repo / "clusters/staging"))
    assert code == 0 and "name: staging" in out and "name: production" not in out
    code, _, err = run(capsys, "get", "all", "--repo", str(repo), "--cluster", "nowhere")
    assert code == 2 and "--cluster nowhere: not a directory of the repository" in err


def test_check_fails_only_where_flux_would_and_names_the_objects(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write(tmp_path, {
        "clusters/prod/flux-system/gotk-sync.yaml": SYNC.format(path="clusters/prod"),
        "clusters/prod/apps.yaml": ks("apps", "./apps", namespace="flux-system", depends="infra"),
        "clusters/prod/web.yaml": ks("web", "./apps", namespace="flux-system", depends="apps"),
        "clusters/prod/db.yaml": ks("db", "./apps", namespace="flux-system"),
        "apps/cm.yaml": CONFIGMAP.replace("settings}", "settings, namespace: apps}"),
    })
    code, report, err = run(capsys, "check", "--repo", str(repo))
    assert code == 2
    assert "refers to Kustomization flux-system/infra, which is not defined" in report
    assert "✗ Kustomization flux-system/apps: it depends on Kustomization flux-system/infra" in report
    assert "✗ Kustomization flux-system/web: it depends on Kustomization flux-system/apps, which is skipped" in report
    code, out, err = run(capsys, "get", "kustomizations", "-o", "json", "--repo", str(repo))
    assert code == 0
    assert "skipped: Kustomization flux-system/web" in err
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["db"]["ready"] == "Unknown" and rows["web"]["ready"] == "False"
    assert rows["web"]["message"].startswith("skipped: it depends on Kustomization")
    code, out, _ = run(capsys, "build", "kustomization", "db", "--repo", str(repo))
    assert code == 0 and "name: settings" in out
    code, _, err = run(capsys, "build", "kustomization", "web", "--repo", str(repo))
    assert code == 2 and "is skipped: it depends on Kustomization flux-system/apps" in err
