"""`gitward reconcile kustomization flux-system --with-source`: examples/homelab from a bare git
repository into a real kube-apiserver, then a no-op, then a change that prunes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client as kube

from engine.cli import main
from tests.integration.git_env import BareRepo, clone
from tests.integration.kube_env import KubeAPI

OWNER = "kustomize.toolkit.fluxcd.io/name"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def sync(capsys: pytest.CaptureFixture[str], state: str, repo: Path, cache: Path, kube_api: KubeAPI,
         *extra: str) -> tuple[int, str, str]:
    return run(capsys, "--state", state, "reconcile", "kustomization", "flux-system",
               "--repo", str(repo), "--workdir", str(cache), "--kubeconfig",
               str(kube_api.kubeconfig), *extra)


def test_homelab_syncs_then_noops_then_prunes(homelab_remote: tuple[BareRepo, Path],
                                              kube_api: KubeAPI, kube_client: kube.ApiClient,
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bare, repo = homelab_remote
    state, cache = str(tmp_path / "state.db"), tmp_path / "cache"
    revision = f"main@sha1:{bare.rev('main')}"

    code, out, err = sync(capsys, state, repo, cache, kube_api)
    assert code == 1 and "has no recorded revision yet; run with --with-source" in err

    code, out, err = sync(capsys, state, repo, cache, kube_api, "--with-source")
    assert code == 0, err
    assert f"Kustomization flux-system/flux-system at {revision}" in out
    apps = kube.AppsV1Api(kube_client)
    podinfo = apps.read_namespaced_deployment("podinfo", "podinfo")
    assert podinfo.spec.template.spec.containers[0].image == "ghcr.io/stefanprodan/podinfo:6.5.1"
    assert podinfo.metadata.labels[OWNER] == "flux-system"
    custom = kube.CustomObjectsApi(kube_client)
    policy = custom.get_namespaced_custom_object("image.toolkit.fluxcd.io", "v1", "podinfo",
                                                 "imagepolicies", "podinfo")
    assert policy["spec"]["policy"]["semver"]["range"] == ">=6.0.0 <7.0.0"

    code, out, err = sync(capsys, state, repo, cache, kube_api)
    assert code == 0 and "no changes" in out, out + err

    other = clone(bare.url, tmp_path / "other")
    redis = other.path / "cluster/infrastructure/redis/redis.yaml"
    # keep the Namespace: without a controller-manager a deleted one stays Terminating
    redis.write_text(redis.read_text().split("\n---\n")[0] + "\n")
    other.git("-c", "user.name=Alex", "-c", "user.email=alex@example.com", "commit", "-qam",
              "Remove redis")
    other.push()
    code, out, err = sync(capsys, state, repo, cache, kube_api, "--with-source")
    assert code == 0, err
    with pytest.raises(kube.ApiException) as gone:
        apps.read_namespaced_stateful_set("redis", "infrastructure")
    assert gone.value.status == 404
    _, out, _ = run(capsys, "--state", state, "get", "kustomizations", "--repo", str(repo),
                    "-o", "json")
    [row] = json.loads(out)
    assert row["ready"] == "True" and row["revision"] == f"main@sha1:{bare.rev('main')}"


def test_service_account_name_applies_as_that_account(homelab_remote: tuple[BareRepo, Path],
                                                      kube_api: KubeAPI, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """With `serviceAccountName`, the API server's RBAC judges the account, not gitward's own
    credentials: an account with no role may apply nothing."""
    _, repo = homelab_remote
    sync_file = repo / "cluster/system/flux-system/gotk-sync.yaml"
    sync_file.write_text(sync_file.read_text().replace("  prune: true\n",
                                                       "  prune: true\n  serviceAccountName: deployer\n"))
    code, _, err = sync(capsys, str(tmp_path / "state.db"), repo, tmp_path / "cache", kube_api,
                        "--with-source")
    assert code == 1
    assert "the API server answered 403 (forbidden)" in err


def test_a_suspended_kustomization_applies_nothing(homelab_remote: tuple[BareRepo, Path],
                                                   kube_api: KubeAPI, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _, repo = homelab_remote
    state = str(tmp_path / "state.db")
    assert run(capsys, "--state", state, "suspend", "kustomization", "flux-system", "--repo",
               str(repo))[0] == 0
    code, out, _ = sync(capsys, state, repo, tmp_path / "cache", kube_api, "--with-source")
    assert code == 0 and "Kustomization flux-system/flux-system is suspended" in out
    _, out, _ = run(capsys, "--state", state, "get", "kustomizations", "--repo", str(repo),
                    "-o", "json")
    [row] = json.loads(out)
    assert row["suspended"] is True and row["ready"] == "Unknown"
