"""The Secrets of certSecretRef and proxySecretRef, read as Flux documents them: the
keys each takes, the errors that name the Secret and the key but never a value, and the
only Secret types Flux takes for TLS."""

from __future__ import annotations

import base64

import pytest

from engine.observe.transport import SecretError, proxy_from_secret, tls_from_secret

SOURCE, REFERRER = "Secret apps/s", "the ImageRepository's spec.proxySecretRef"


def secret(type_: str = "Opaque", **data: str) -> dict[str, object]:
    return {"type": type_, "data": {key.replace("_", "."): base64.b64encode(value.encode()).decode()
                                    for key, value in data.items()}}


def test_a_proxy_url_carries_its_credentials_quoted_and_hides_every_form_of_the_password() -> None:
    proxy = proxy_from_secret(secret(address="http://proxy:3128", username="me", password="p@ss:w/rd"),
                              SOURCE, REFERRER)
    assert proxy.url() == "http://me:p%40ss%3Aw%2Frd@proxy:3128"
    assert "p@ss:w/rd" not in repr(proxy)
    assert set(proxy.secrets()) >= {"p@ss:w/rd", "p%40ss%3Aw%2Frd", proxy.url(),
                                    base64.b64encode(b"me:p@ss:w/rd").decode()}


@pytest.mark.parametrize(("data", "said"), [
    ({}, "Secret apps/s (the ImageRepository's spec.proxySecretRef) has no address"),
    ({"address": "proxy:3128"}, "address must be a URL such as http://proxy.example.com:3128"),
    ({"address": "ftp://proxy"}, "address must be a URL"),
    ({"address": "http://me:secret-pw@proxy"}, "address carries credentials: give them as username and password"),
])
def test_a_proxy_secret_without_what_flux_documents_is_refused(data: dict[str, str], said: str) -> None:
    with pytest.raises(SecretError) as err:
        proxy_from_secret(secret(**data), SOURCE, REFERRER)
    assert said in str(err.value)
    assert "secret-pw" not in str(err.value)


def test_a_missing_secret_and_a_value_not_base64_name_the_secret() -> None:
    with pytest.raises(SecretError, match="Secret apps/s .* does not exist"):
        proxy_from_secret(None, SOURCE, REFERRER)
    with pytest.raises(SecretError, match="the value of address is not base64"):
        proxy_from_secret({"data": {"address": "not base64!"}}, SOURCE, REFERRER)


def test_tls_keys_and_the_deprecated_ones_of_an_image_repository() -> None:
    tls = tls_from_secret(secret("kubernetes.io/tls", ca_crt="CA", tls_crt="CERT", tls_key="KEY"),
                          SOURCE, REFERRER)
    assert (tls.ca, tls.cert, tls.key) == (b"CA", b"CERT", b"KEY")
    old = {"type": "Opaque", "data": {k: base64.b64encode(v).decode() for k, v in
                                      (("caFile", b"OLD"), ("ca.crt", b"NEW"), ("certFile", b"C"),
                                       ("keyFile", b"K"))}}
    tls = tls_from_secret(old, SOURCE, REFERRER, deprecated_keys=True)
    assert (tls.ca, tls.cert, tls.key) == (b"NEW", b"C", b"K")
    with pytest.raises(SecretError, match="holds neither ca.crt nor tls.crt and tls.key"):
        tls_from_secret({"data": {"caFile": base64.b64encode(b"OLD").decode()}}, SOURCE, REFERRER)
    with pytest.raises(SecretError, match="holds tls.key without tls.crt"):
        tls_from_secret(secret(tls_key="KEY"), SOURCE, REFERRER)
    with pytest.raises(SecretError, match="is of type 'kubernetes.io/dockerconfigjson'"):
        tls_from_secret(secret("kubernetes.io/dockerconfigjson", ca_crt="CA"), SOURCE, REFERRER)
