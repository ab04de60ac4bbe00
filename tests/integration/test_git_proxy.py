"""A GitRepository's `spec.proxySecretRef`: the fetch, and the push of an automation whose source
it is, go through the proxy its Secret names (Debian's tinyproxy with Basic auth, its log the
witness) to a git server over HTTP (git's own http-backend)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as kube

from tests.integration.git_http import GitHttpServer
from tests.integration.homelab_env import Homelab, HomelabFactory, replaced
from tests.integration.kube_env import KubeAPI
from tests.integration.kube_secrets import nowhere, put_secret
from tests.integration.proxy_env import RunningProxy
from tests.integration.registry_env import RunningRegistry

SYNC = "cluster/system/flux-system/gotk-sync.yaml"


@pytest.fixture
def lab(homelab: HomelabFactory, open_registry: RunningRegistry) -> Homelab:
    return homelab(open_registry.host)


@pytest.fixture
def git_server(lab: Homelab) -> Iterator[GitHttpServer]:
    server = GitHttpServer(lab.bare.path.parent)
    yield server
    server.stop()


def proxied(lab: Homelab, server: GitHttpServer, proxy: RunningProxy, kube_client: kube.ApiClient,
            password: str) -> str:
    """Point the flux-system GitRepository at `server` through `proxy` (a Secret with
    `password`); the URL of the repository."""
    url = server.url(lab.bare.path.name)
    name = f"proxy-{secrets.token_hex(3)}"
    put_secret(kube_client, "flux-system", name, {"address": proxy.address, "username": proxy.user,
                                                  "password": password})
    replaced(lab.repo / SYNC, f"  url: {lab.bare.path.as_uri()}\n",
             f"  url: {url}\n  proxySecretRef:\n    name: {name}\n")
    return url


def test_fetch_and_push_go_through_the_proxy(
        lab: Homelab, git_server: GitHttpServer, http_proxy: RunningProxy, kube_api: KubeAPI,
        kube_client: kube.ApiClient) -> None:
    url = proxied(lab, git_server, http_proxy, kube_client, http_proxy.password)
    kubeconfig = str(kube_api.kubeconfig)
    fetched = lab.call("reconcile", "source", "git", "flux-system", "-n", "flux-system", "--repo",
                       str(lab.repo), "--workdir", str(lab.workdir), "--kubeconfig", kubeconfig)
    assert fetched.returncode == 0, fetched.stderr
    assert f"GET {url}/info/refs?service=git-upload-pack HTTP/1.1" in http_proxy.requests()

    lab.import_tags(lab.repo, "6.5.1\n", "6.5.1\n6.6.0\n")
    pushed = lab.call("reconcile", "image", "update", "podinfo", "-n", "podinfo", "--repo",
                      str(lab.repo), "--workdir", str(lab.workdir), "--kubeconfig", kubeconfig)
    assert pushed.returncode == 0, pushed.stderr
    assert lab.bare.subjects()[0] == "Update podinfo image"
    assert f"POST {url}/git-receive-pack HTTP/1.1" in http_proxy.requests()
    nowhere([http_proxy.password], [fetched.stdout, fetched.stderr, pushed.stdout, pushed.stderr],
            Path(lab.state))


def test_a_proxy_refusing_the_password_fails_the_fetch_without_showing_it(
        lab: Homelab, git_server: GitHttpServer, http_proxy: RunningProxy, kube_api: KubeAPI,
        kube_client: kube.ApiClient) -> None:
    wrong = "wrong-" + secrets.token_hex(6)
    proxied(lab, git_server, http_proxy, kube_client, wrong)
    fetched = lab.call("reconcile", "source", "git", "flux-system", "-n", "flux-system", "--repo",
                       str(lab.repo), "--workdir", str(lab.workdir), "--kubeconfig",
                       str(kube_api.kubeconfig))
    assert fetched.returncode == 1
    assert "access denied" in fetched.stderr
    assert "refused its username and password" in fetched.stderr
    assert git_server.paths == []  # nothing went around the proxy
    assert "Traceback" not in fetched.stderr
    nowhere([wrong, http_proxy.password], [fetched.stdout, fetched.stderr], Path(lab.state))
