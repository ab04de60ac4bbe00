"""How an ImageRepository reaches its registry, as its Secrets (read from a real API server) say:
`certSecretRef` (a registry on TLS signed by a test CA; a client certificate for mutual TLS),
`proxySecretRef` (Debian's tinyproxy with Basic auth) and `insecure` (plain HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubernetes import client as kube

from engine.cli import main
from tests.integration.conftest import TlsRegistries
from tests.integration.kube_env import KubeAPI
from tests.integration.kube_secrets import nowhere, put_secret
from tests.integration.proxy_env import RunningProxy
from tests.integration.registry_env import RunningRegistry

UNVERIFIED = "could not be verified"


def scan(capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, namespace: str,
         host: str, fields: str) -> tuple[int, str]:
    """`gitward reconcile image repository` of public/app on `host` with the rules' `fields`."""
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "image.rules").write_text(
        f'image repository {namespace}/app {{\n  image "{host}/public/app"\n{fields}}}\n')
    code = main(["--state", str(tmp_path / "s.db"), "reconcile", "image", "repository",
                 f"{namespace}/app", "--repo", str(repo), "--kubeconfig", str(kube_api.kubeconfig)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_cert_secret_ca_verifies_a_registry_signed_by_a_private_ca(
        tls_registries: TlsRegistries, kube_api: KubeAPI, kube_client: kube.ApiClient,
        kube_namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = tls_registries.plain.host
    code, said = scan(capsys, tmp_path, kube_api, kube_namespace, host, "")
    assert code == 1 and UNVERIFIED in said and "spec.certSecretRef" in said

    put_secret(kube_client, kube_namespace, "ca", {"ca.crt": tls_registries.plain_ca.cert_path.read_bytes()})
    code, said = scan(capsys, tmp_path, kube_api, kube_namespace, host, '  cert-secret "ca"\n')
    assert code == 0, said
    assert "3 tags" in said


def test_cert_secret_client_certificate_passes_mutual_tls(
        tls_registries: TlsRegistries, kube_api: KubeAPI, kube_client: kube.ApiClient,
        kube_namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host, ca = tls_registries.mutual.host, tls_registries.mutual_ca.cert_path.read_bytes()
    client = tls_registries.client
    put_secret(kube_client, kube_namespace, "ca-only", {"ca.crt": ca})
    put_secret(kube_client, kube_namespace, "client", {
        "ca.crt": ca, "tls.crt": client.cert_path.read_bytes(), "tls.key": client.key_path.read_bytes()},
        type_="kubernetes.io/tls")

    code, said = scan(capsys, tmp_path, kube_api, kube_namespace, host, '  cert-secret "ca-only"\n')
    assert code == 1, said  # the registry asks for a client certificate: none is shown
    code, said = scan(capsys, tmp_path, kube_api, kube_namespace, host, '  cert-secret "client"\n')
    assert code == 0, said
    assert "3 tags" in said
    key_lines = [line for line in client.key_path.read_text().splitlines() if "PRIVATE KEY" not in line]
    nowhere([client.key_path.read_bytes(), *key_lines], [said], tmp_path / "s.db")


def test_cert_secret_without_the_keys_flux_documents_is_a_clear_error(
        tls_registries: TlsRegistries, kube_api: KubeAPI, kube_client: kube.ApiClient,
        kube_namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put_secret(kube_client, kube_namespace, "half", {
        "tls.crt": tls_registries.client.cert_path.read_bytes()})
    code, said = scan(capsys, tmp_path, kube_api, kube_namespace, tls_registries.mutual.host,
                      '  cert-secret "half"\n')
    assert code == 1
    assert (f"Secret {kube_namespace}/half (the ImageRepository's spec.certSecretRef) holds "
            "tls.crt without tls.key") in said
    assert "Traceback" not in said


def test_proxy_secret_carries_the_scan_through_the_proxy(
        open_registry: RunningRegistry, tls_registries: TlsRegistries, http_proxy: RunningProxy,
        kube_api: KubeAPI, kube_client: kube.ApiClient, kube_namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    put_secret(kube_client, kube_namespace, "proxy", {
        "address": http_proxy.address, "username": http_proxy.user, "password": http_proxy.password})
    put_secret(kube_client, kube_namespace, "ca", {"ca.crt": tls_registries.plain_ca.cert_path.read_bytes()})

    code, said = scan(capsys, tmp_path, kube_api, kube_namespace, open_registry.host,
                      '  insecure true\n  proxy-secret "proxy"\n')
    assert code == 0, said
    assert f"GET http://{open_registry.host}/v2/public/app/tags/list" in " ".join(http_proxy.requests())

    code, said = scan(capsys, tmp_path, kube_api, kube_namespace, tls_registries.plain.host,
                      '  proxy-secret "proxy"\n  cert-secret "ca"\n')
    assert code == 0, said
    assert f"CONNECT {tls_registries.plain.host} HTTP/1.1" in http_proxy.requests()
    nowhere([http_proxy.password], [said], tmp_path / "s.db")


def test_a_proxy_refusing_the_credentials_fails_the_scan_without_showing_them(
        open_registry: RunningRegistry, http_proxy: RunningProxy, kube_api: KubeAPI,
        kube_client: kube.ApiClient, kube_namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    put_secret(kube_client, kube_namespace, "anonymous", {"address": http_proxy.address})
    code, said = scan(capsys, tmp_path, kube_api, kube_namespace, open_registry.host,
                      '  insecure true\n  proxy-secret "anonymous"\n')
    assert code == 1
    assert "the proxy asks for credentials it was not given, or refused those given" in said

    wrong = http_proxy.password + "-wrong"  # tinyproxy answers this one 401, as a registry would
    put_secret(kube_client, kube_namespace, "wrong", {
        "address": http_proxy.address, "username": http_proxy.user, "password": wrong})
    code, said = scan(capsys, tmp_path, kube_api, kube_namespace, open_registry.host,
                      '  insecure true\n  proxy-secret "wrong"\n')
    assert code == 1 and "scan failed" in said
    nowhere([wrong, http_proxy.password], [said], tmp_path / "s.db")


def test_insecure_allows_a_plain_http_registry(
        open_registry: RunningRegistry, kube_api: KubeAPI, kube_namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, said = scan(capsys, tmp_path, kube_api, kube_namespace, open_registry.host, "")
    assert code == 1, said  # HTTPS to a plain HTTP registry fails
    code, said = scan(capsys, tmp_path, kube_api, kube_namespace, open_registry.host, "  insecure true\n")
    assert code == 0, said
    assert "3 tags" in said
