"""An ImageRepository's `secretRef`, read from a real API server, authenticates a real scan."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from kubernetes import client as kube

from engine.cli import main
from tests.integration.kube_env import KubeAPI
from tests.integration.registry_env import RegistryEnv, RunningRegistry


def rules(tmp_path: Path, host: str, namespace: str) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "image.rules").write_text(f'''
image repository {namespace}/private {{
  image    "{host}/private/app"
  insecure true
  secret   "pull"
}}
''')
    return repo


def put_secret(api: kube.ApiClient, namespace: str, type_: str, config: dict[str, object]) -> None:
    data = {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}
    kube.CoreV1Api(api).create_namespaced_secret(namespace, kube.V1Secret(
        metadata=kube.V1ObjectMeta(name="pull"), type=type_, data=data))


def scan(capsys: pytest.CaptureFixture[str], tmp_path: Path, repo: Path, kube_api: KubeAPI,
         namespace: str) -> tuple[int, str, str]:
    code = main(["--state", str(tmp_path / "s.db"), "reconcile", "image", "repository",
                 f"{namespace}/private", "--repo", str(repo), "--kubeconfig",
                 str(kube_api.kubeconfig)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_secret_ref_credentials_pull_a_private_repository(
        token_registry: RunningRegistry, registry_env: RegistryEnv, kube_api: KubeAPI,
        kube_client: kube.ApiClient, kube_namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    auth = base64.b64encode(f"{registry_env.user}:{registry_env.password}".encode()).decode()
    put_secret(kube_client, kube_namespace, "kubernetes.io/dockerconfigjson",
               {"auths": {token_registry.host: {"auth": auth}}})
    code, out, err = scan(capsys, tmp_path, rules(tmp_path, token_registry.host, kube_namespace),
                          kube_api, kube_namespace)
    assert code == 0, err
    assert "scan #1: 2 tags" in out
    assert registry_env.password not in out + err


def test_a_secret_of_the_wrong_type_fails_the_scan_clearly(
        token_registry: RunningRegistry, kube_api: KubeAPI, kube_client: kube.ApiClient,
        kube_namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put_secret(kube_client, kube_namespace, "Opaque", {"auths": {}})
    code, _, err = scan(capsys, tmp_path, rules(tmp_path, token_registry.host, kube_namespace),
                        kube_api, kube_namespace)
    assert code == 1
    assert (f"Secret {kube_namespace}/pull is of type 'Opaque', not "
            "'kubernetes.io/dockerconfigjson'") in err
