"""The test API server behaves like a cluster: the official `kubernetes` client, no mocks.

What gitward's cluster code relies on: token auth through the generated kubeconfig, server-side
apply with a field manager and conflicts, dry-run, server-side validation (422), and CRDs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, UnprocessibleEntityError

from tests.conftest import require
from tests.integration.kube_env import KubeAPI, KubeBinaries, KubeEnvError

WAIT = 60.0


@pytest.fixture
def dynamic(kube_client: client.ApiClient, tmp_path: Path) -> DynamicClient:
    """Its own discovery cache: the default one is keyed by URL only and outlives the server."""
    return DynamicClient(kube_client, cache_file=str(tmp_path / "discovery.json"))  # type: ignore[no-untyped-call]


def wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {WAIT:g}s")
        time.sleep(0.2)


def config_map(namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": namespace},
        "data": data,
    }


def test_kubeconfig_reaches_the_server_with_the_token(kube_api: KubeAPI, kube_client: client.ApiClient) -> None:
    assert client.VersionApi(kube_client).get_code().git_version == "v1.20.2"
    names = [ns.metadata.name for ns in client.CoreV1Api(kube_client).list_namespace().items if ns.metadata]
    assert "kube-system" in names

    anonymous = client.Configuration()
    anonymous.host = kube_api.url
    anonymous.verify_ssl = False
    with client.ApiClient(anonymous) as unauthenticated, pytest.raises(ApiException) as refused:
        client.CoreV1Api(unauthenticated).list_namespace()
    assert refused.value.status == 403


def test_server_side_apply_records_the_field_manager_and_resolves_conflicts(
    dynamic: DynamicClient, kube_namespace: str
) -> None:
    config_maps = dynamic.resources.get(api_version="v1", kind="ConfigMap")
    applied = config_maps.server_side_apply(
        body=config_map(kube_namespace, {"color": "blue"}), field_manager="gitward", force_conflicts=True
    )
    assert applied.data.color == "blue"
    managers = {(entry.manager, entry.operation) for entry in applied.metadata.managedFields}
    assert ("gitward", "Apply") in managers

    with pytest.raises(ConflictError):
        config_maps.server_side_apply(body=config_map(kube_namespace, {"color": "red"}), field_manager="intruder")

    taken = config_maps.server_side_apply(
        body=config_map(kube_namespace, {"color": "green"}), field_manager="gitward", force_conflicts=True
    )
    assert taken.data.color == "green"

    pruned = config_maps.server_side_apply(
        body=config_map(kube_namespace, {"size": "large"}), field_manager="gitward", force_conflicts=True
    )
    assert pruned.data.to_dict() == {"size": "large"}


def test_dry_run_apply_answers_without_storing(dynamic: DynamicClient, kube_namespace: str) -> None:
    config_maps = dynamic.resources.get(api_version="v1", kind="ConfigMap")
    answer = config_maps.server_side_apply(
        body=config_map(kube_namespace, {"color": "blue"}), field_manager="gitward", dry_run="All"
    )
    assert answer.data.color == "blue"
    with pytest.raises(NotFoundError):
        config_maps.get(name="settings", namespace=kube_namespace)


def test_an_invalid_object_is_refused_with_422(dynamic: DynamicClient, kube_namespace: str) -> None:
    config_maps = dynamic.resources.get(api_version="v1", kind="ConfigMap")
    body = config_map(kube_namespace, {"bad key!": "x"})
    with pytest.raises(UnprocessibleEntityError) as refused:
        config_maps.server_side_apply(body=body, field_manager="gitward")
    assert refused.value.status == 422
    assert "bad key!" in str(refused.value.body)


def test_a_crd_becomes_established_and_serves_its_custom_resources(
    dynamic: DynamicClient, kube_namespace: str
) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.smoke.gitward.test"},
        "spec": {
            "group": "smoke.gitward.test",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                    "type": "object", "properties": {"size": {"type": "integer"}},
                }}}},
            }],
        },
    }
    crds = dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crds.server_side_apply(body=crd, field_manager="gitward", force_conflicts=True)

    def established() -> bool:
        conditions = crds.get(name="widgets.smoke.gitward.test").status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_for("the CRD becoming Established", established)

    widgets = dynamic.resources.get(api_version="smoke.gitward.test/v1", kind="Widget")
    widget = {
        "apiVersion": "smoke.gitward.test/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": kube_namespace},
        "spec": {"size": 3},
    }
    applied = widgets.server_side_apply(body=widget, field_manager="gitward", force_conflicts=True)
    assert applied.spec.size == 3
    # The schema is enforced on create. (1.20 answers a server-side apply of the same body with a
    # 500, "failed to create typed patch object", not a 422.)
    with pytest.raises(UnprocessibleEntityError):
        widgets.create(body={**widget, "metadata": {"name": "bad", "namespace": kube_namespace}, "spec": {"size": "three"}})


def test_the_controller_manager_finishes_namespace_deletion(tmp_path: Path) -> None:
    try:
        binaries = KubeBinaries.locate()
    except KubeEnvError as err:
        require(False, str(err))
        raise  # require() skips or fails; this line only tells the type checker
    with KubeAPI(binaries, controller_manager=True) as kube:
        root = kube.root
        pids = kube.pids
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        api = config.new_client_from_config(config_file=str(kube.kubeconfig))  # type: ignore[no-untyped-call]
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="doomed")))
        core.delete_namespace("doomed")

        def gone() -> bool:
            try:
                core.read_namespace("doomed")
            except ApiException as err:
                return bool(err.status == 404)
            return False

        wait_for("the namespace controller removing a deleted namespace", gone)
        api.close()
    assert not root.exists()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_missing_binaries_name_the_build_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITWARD_KUBE_BIN_DIR", str(tmp_path))
    with pytest.raises(KubeEnvError, match=r"kube-apiserver is missing: build it with `bash tests/env/kube.sh build`"):
        KubeBinaries.locate()
