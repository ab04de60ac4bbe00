"""The GitRepository `flux bootstrap` creates in the cluster, read from the live cluster.

A repository bootstrapped by hand (no gotk-sync.yaml, as many home-ops repositories are) names
`flux-system/flux-system` without defining it. With a cluster configured, `gitward reconcile
kustomization` takes that source as the cluster has it, not as a guess from the checkout's remote;
Kustomizations Flux would apply to another cluster, or from a source gitward does not fetch, are
skipped with their reason rather than applied here.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import urllib3
import yaml

from engine.act.cluster import apply_object, delete_object
from engine.cli import main
from engine.model import Manifest
from engine.observe.cluster import connect, read_object
from tests.conftest import EXAMPLES
from tests.integration.git_env import make_bare_repo
from tests.integration.kube_env import KubeAPI

CRDS = EXAMPLES / "homelab" / "cluster" / "system" / "flux-system" / "crds.yaml"
WAIT = 60.0
"""How long a stand-in CRD may take to be established: a bound on waiting, not a timing assert."""

KS = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: cluster-apps, namespace: flux-system}
spec:
  interval: 1h
  path: ./kubernetes/apps
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}
"""


def install_git_repository_kind(kubeconfig: Path) -> None:
    """Flux's GitRepository kind as gitward's tests stand it in (the test server is v1.20)."""
    with connect(kubeconfig) as client:
        for body in yaml.safe_load_all(CRDS.read_text()):
            if body and body["metadata"]["name"].startswith("gitrepositories."):
                apply_object(client.dynamic, Manifest(body, "crds.yaml"))
        deadline = time.monotonic() + WAIT
        while True:
            crd = read_object(client, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                              "gitrepositories.source.toolkit.fluxcd.io")
            # a CRD just created may carry `conditions: null` until the server has looked at it
            conditions = ((crd or {}).get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return
            assert time.monotonic() < deadline, "the GitRepository stand-in CRD was not established"
            time.sleep(0.2)


def test_a_bootstrap_source_git_does_not_hold_is_read_from_the_cluster(
        tmp_path: Path, kube_api: KubeAPI, kube_namespace: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    seed = tmp_path / "seed"
    (seed / "kubernetes/flux").mkdir(parents=True)
    (seed / "kubernetes/apps").mkdir(parents=True)
    (seed / "kubernetes/flux/ks.yaml").write_text(KS + "---\n" + KS.replace(
        "name: cluster-apps", "name: spoke").replace(
        "  prune: true", "  prune: true\n  kubeConfig: {secretRef: {name: spoke-kubeconfig}}")
        + "---\n" + KS.replace("name: cluster-apps", "name: generated").replace(
        "{kind: GitRepository, name: flux-system, namespace: flux-system}",
        "{kind: ExternalArtifact, name: apps, namespace: flux-system}"))
    (seed / "kubernetes/apps/settings.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {kube_namespace}}}\n"
        "data: {from: the-cluster-source}\n")
    bare = make_bare_repo(tmp_path / "fleet.git", seed)
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", bare.url, str(checkout)], check=True)
    # the checkout's remote is not where the cluster fetches from: a guess from it would fail
    subprocess.run(["git", "-C", str(checkout), "remote", "set-url", "origin",
                    "https://git.invalid/someone/else.git"], check=True)

    install_git_repository_kind(kube_api.kubeconfig)
    with connect(kube_api.kubeconfig) as client:
        apply_object(client.dynamic, Manifest({"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": "flux-system"}}, "cluster"))
        apply_object(client.dynamic, Manifest({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "flux-system", "namespace": "flux-system"},
            "spec": {"interval": "1m", "url": bare.url, "ref": {"branch": "main"}}}, "cluster"))

    try:
        code = main(["--state", str(tmp_path / "state.db"), "reconcile", "kustomization",
                     "--all", "--with-source", "--repo", str(checkout),
                     "--workdir", str(tmp_path / "work"), "--kubeconfig", str(kube_api.kubeconfig)])
    finally:  # the API server is shared by the session: leave no bootstrap source behind
        with connect(kube_api.kubeconfig) as client:
            delete_object(client.dynamic, "source.toolkit.fluxcd.io/v1", "GitRepository",
                          "flux-system", "flux-system")
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert (f"GitRepository flux-system/flux-system is not in git: taken from the live cluster as "
            f"{bare.url}#branch main") in err
    # what Flux would apply elsewhere, or from a source gitward does not fetch, is left alone
    assert ("• Kustomization flux-system/spoke applies to another cluster (spec.kubeConfig): "
            "gitward does not apply it") in out
    assert ("• Kustomization flux-system/generated: its source is ExternalArtifact apps, which "
            "gitward does not fetch: not applied") in out
    with connect(kube_api.kubeconfig) as client:
        live = read_object(client, "v1", "ConfigMap", kube_namespace, "settings")
    assert live is not None and live["data"] == {"from": "the-cluster-source"}

    code = main(["check", "--repo", str(checkout)])
    report, _ = capsys.readouterr()
    assert code == 0
    assert "taken as https://git.invalid/someone/else.git#main, the checkout's remote" in report
