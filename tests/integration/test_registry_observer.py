"""The registry observer against a real docker-registry: pages, tokens, Basic over TLS, faults.

The pure parts come first, table-driven (image names, docker config files, header parsing); the
rest runs against the registries of `conftest.py`. Every failure must say who refused what, and
never show a secret.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.errors import UserError
from engine.observe.dockerconfig import (
    Credentials,
    DockerConfigError,
    credentials_from_docker_config,
    credentials_from_dockerconfigjson,
    docker_config_path,
)
from engine.observe.registry import (
    ImageName,
    ImageNameError,
    RegistryError,
    list_tags,
    next_link,
    parse_challenge,
    parse_image,
    redact_url,
    retry_after_seconds,
)
from tests.integration.registry_env import (
    MANY_TAGS,
    PRIVATE_TAGS,
    PUBLIC_TAGS,
    KeyPair,
    PagingProxy,
    RegistryEnv,
    RunningRegistry,
    TokenRequest,
    TokenService,
    free_port,
    ssl_context,
)

HUB = "registry-1.docker.io"
WriteConfig = Callable[[dict[str, Any]], Path]
MakeProxy = Callable[..., PagingProxy]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def on(server: RunningRegistry | PagingProxy, repository: str) -> ImageName:
    """The image `repository` on a test server; the proxy and the open registries speak plain HTTP."""
    insecure = server.scheme == "http" if isinstance(server, RunningRegistry) else True
    return parse_image(f"{server.host}/{repository}", insecure=insecure)


def assert_no_secret(err: BaseException, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in str(err)
        assert secret not in repr(err)


# Image names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, registry, repository",
    [
        ("nginx", HUB, "library/nginx"),
        ("library/nginx", HUB, "library/nginx"),
        ("docker.io/nginx", HUB, "library/nginx"),
        ("index.docker.io/library/nginx", HUB, "library/nginx"),
        ("registry-1.docker.io/bitnami/redis", HUB, "bitnami/redis"),
        ("user/app", HUB, "user/app"),
        ("ghcr.io/o/a", "ghcr.io", "o/a"),
        ("ghcr.io/org/team/app", "ghcr.io", "org/team/app"),
        ("quay.io/my_org/my-app.v2", "quay.io", "my_org/my-app.v2"),
        ("localhost:5000/app", "localhost:5000", "app"),
        ("localhost/app", "localhost", "app"),
        ("127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b"),
        ("[::1]:5000/app", "[::1]:5000", "app"),
    ],
)
def test_image_names(text: str, registry: str, repository: str) -> None:
    assert parse_image(text) == ImageName(registry, repository, insecure=False)


@pytest.mark.parametrize(
    "text, message",
    [
        ("nginx:1.25", "image 'nginx:1.25' should not contain a tag; remove ':1.25'"),
        ("ghcr.io/o/a:v1", "image 'ghcr.io/o/a:v1' should not contain a tag; remove ':v1'"),
        ("localhost:5000/app:1.0", "image 'localhost:5000/app:1.0' should not contain a tag; remove ':1.0'"),
        ("https://ghcr.io/o/a", "image 'https://ghcr.io/o/a' should not start with a URL scheme; remove 'https://'"),
        ("nginx@sha256:" + "a" * 64, "image 'nginx@sha256:aaaa" + "a" * 60 + "' should not contain a digest; "
         "remove '@sha256:" + "a" * 64 + "'"),
        ("ghcr.io/Org/app", "invalid repository path component 'Org' (repository names are lower-case)"),
        ("ghcr.io/o/-app", "invalid repository path component '-app'"),
        ("ghcr.io/o/a/", "invalid repository path component ''"),
        ("bad_host.io:x/app", "invalid registry host 'bad_host.io:x'"),
        ("  ", "image must not be empty"),
    ],
)
def test_image_names_rejected(text: str, message: str) -> None:
    with pytest.raises(ImageNameError) as caught:
        parse_image(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, UserError)


@pytest.mark.parametrize("text", ["user:hunter2@ghcr.io/o/a", "https://user:hunter2@ghcr.io/o/a"])
def test_image_with_credentials_rejected_without_echoing_them(text: str) -> None:
    with pytest.raises(ImageNameError) as caught:
        parse_image(text)
    assert "hunter2" not in str(caught.value)
    assert "***@ghcr.io/o/a" in str(caught.value)


def test_insecure_means_plain_http() -> None:
    assert parse_image("localhost:5000/app", insecure=True).base_url == "http://localhost:5000"
    assert parse_image("ghcr.io/o/a").base_url == "https://ghcr.io"
    assert str(parse_image("nginx")) == "registry-1.docker.io/library/nginx"


# Header parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, target",
    [
        (['</v2/a/tags/list?last=x&n=2>; rel="next"'], "/v2/a/tags/list?last=x&n=2"),
        (["<https://r.example/v2/a/tags/list?n=2&last=x>; rel=next"], "https://r.example/v2/a/tags/list?n=2&last=x"),
        (['</prev>; rel="prev", </next>; rel="next"'], "/next"),
        (['</prev>; rel="prev"', '</next>; rel="next"'], "/next"),
        (['<list?last=b&n=1>; rel="next last"'], "list?last=b&n=1"),
        (['</prev>; rel="prev"'], None),
        (["</only>"], "/only"),
        ([], None),
    ],
)
def test_next_link(values: list[str], target: str | None) -> None:
    assert next_link(values) == target


def test_challenges() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'
    )
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull"}
    assert parse_challenge('Basic realm="gitward-test"') == ("basic", {"realm": "gitward-test"})


NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("1", 1.0),
        ("0", 0.0),
        (" 120 ", 120.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),
        ("soon", None),
        ("-1", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds


def test_redact_url() -> None:
    assert redact_url("https://user:pw@r.example/token?x=1") == "https://***@r.example/token?x=1"
    assert redact_url("http://r.example/v2/") == "http://r.example/v2/"


# Docker config files and dockerconfigjson Secrets --------------------------------------------


def test_config_auth_field(docker_config: WriteConfig) -> None:
    path = docker_config({"auths": {"127.0.0.1:5000": {"auth": b64("alice:s3:cret")}}})
    creds = credentials_from_docker_config("127.0.0.1:5000")
    assert creds == Credentials(source=f"docker config {path}", username="alice", password="s3:cret")
    assert credentials_from_docker_config("127.0.0.1:5001") is None


def test_config_username_password_and_identity_token(docker_config: WriteConfig) -> None:
    docker_config(
        {
            "auths": {
                "https://ghcr.io": {"username": "bob", "password": "pw"},
                "quay.io": {"identitytoken": "idt-1"},
            }
        }
    )
    ghcr = credentials_from_docker_config("ghcr.io")
    quay = credentials_from_docker_config("quay.io")
    assert ghcr is not None and (ghcr.username, ghcr.password) == ("bob", "pw")
    assert quay is not None and quay.identity_token == "idt-1"
    assert credentials_from_docker_config("registry.gitlab.com") is None


@pytest.mark.parametrize("key", ["https://index.docker.io/v1/", "docker.io", "index.docker.io"])
def test_config_docker_hub_keys(docker_config: WriteConfig, key: str) -> None:
    docker_config({"auths": {key: {"auth": b64("hubuser:hubpw")}}})
    creds = credentials_from_docker_config(parse_image("nginx").registry)
    assert creds is not None and creds.username == "hubuser"


def test_config_exact_key_wins(docker_config: WriteConfig) -> None:
    docker_config({"auths": {"https://ghcr.io/v1/": {"auth": b64("old:1")}, "ghcr.io": {"auth": b64("new:2")}}})
    creds = credentials_from_docker_config("ghcr.io")
    assert creds is not None and creds.username == "new"


def test_config_missing_file_means_none(docker_config: WriteConfig) -> None:
    assert credentials_from_docker_config("ghcr.io") is None


def test_config_home_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text('{"auths": {"ghcr.io": {"auth": "%s"}}}' % b64("h:p"))
    assert docker_config_path() == tmp_path / ".docker" / "config.json"
    creds = credentials_from_docker_config("ghcr.io")
    assert creds is not None and creds.source == f"docker config {tmp_path / '.docker' / 'config.json'}"


def test_config_invalid_json_is_located(docker_config: WriteConfig) -> None:
    path = docker_config({})
    path.write_text('{\n  "auths": {\n    "ghcr.io": {"auth": "x",}\n  }\n}\n')
    with pytest.raises(DockerConfigError) as caught:
        credentials_from_docker_config("ghcr.io")
    assert str(caught.value).startswith(f"{path}:3:")
    assert "invalid JSON in docker config" in str(caught.value)


def test_config_bad_auth_is_located_and_not_echoed(docker_config: WriteConfig) -> None:
    path = docker_config({})
    path.write_text('{\n  "auths": {\n    "ghcr.io": {"auth": "bm9jb2xvbg=="}\n  }\n}\n')
    with pytest.raises(DockerConfigError) as caught:
        credentials_from_docker_config("ghcr.io")
    assert str(caught.value) == (
        f"{path}:3:5: auths[\"ghcr.io\"].auth is not base64 of 'user:password' (no ':' in it)"
    )
    path.write_text('{"auths": {"ghcr.io": {"auth": "%%%%"}}}')
    with pytest.raises(DockerConfigError, match="is not base64"):
        credentials_from_docker_config("ghcr.io")


def test_config_credential_helper_is_named(docker_config: WriteConfig) -> None:
    docker_config({"auths": {"ghcr.io": {}}, "credsStore": "desktop"})
    with pytest.raises(DockerConfigError, match="'docker-credential-desktop', which gitward does not run"):
        credentials_from_docker_config("ghcr.io")
    assert credentials_from_docker_config("quay.io") is None
    docker_config({"credHelpers": {"123.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login"}})
    with pytest.raises(DockerConfigError, match="docker-credential-ecr-login"):
        credentials_from_docker_config("123.dkr.ecr.eu-west-1.amazonaws.com")


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials(source="Secret a/b", username="alice", password="hunter2", identity_token="idt-9")
    assert "hunter2" not in repr(creds) and "idt-9" not in repr(creds)
    assert set(creds.secrets()) == {"hunter2", "idt-9", b64("alice:hunter2")}


def test_dockerconfigjson_secret() -> None:
    data = b'{"auths": {"ghcr.io": {"username": "ci", "password": "tok"}}}'
    creds = credentials_from_dockerconfigjson(data, "ghcr.io", source="Secret flux-system/regcred")
    assert creds == Credentials(source="Secret flux-system/regcred", username="ci", password="tok")
    assert credentials_from_dockerconfigjson(data, "quay.io", source="Secret flux-system/regcred") is None
    with pytest.raises(DockerConfigError) as caught:
        credentials_from_dockerconfigjson(b'{"auths": ', "ghcr.io", source="Secret flux-system/regcred")
    assert str(caught.value).startswith("Secret flux-system/regcred: .dockerconfigjson is not valid JSON (line 1")
    with pytest.raises(DockerConfigError, match=r"Secret flux-system/regcred: auths\[\"ghcr.io\"\] must be"):
        credentials_from_dockerconfigjson(b'{"auths": {"ghcr.io": "x"}}', "ghcr.io", source="Secret flux-system/regcred")


def test_bad_arguments_are_user_errors() -> None:
    with pytest.raises(UserError, match="page size must be at least 1"):
        list_tags(parse_image("localhost:1/app", insecure=True), credentials=None, page_size=0)
    with pytest.raises(UserError, match="retries must not be negative"):
        list_tags(parse_image("localhost:1/app", insecure=True), credentials=None, retries=-1)


# Pagination against the real registry ---------------------------------------------------------


@pytest.mark.parametrize("page_size", [1000, 100])
@pytest.mark.parametrize("link_style", ["absolute", "root", "relative"])
def test_follows_every_page(open_registry: RunningRegistry, paging_proxy: MakeProxy, link_style: str, page_size: int) -> None:
    proxy = paging_proxy(open_registry, link_style=link_style)
    result = list_tags(on(proxy, "many/app"), credentials=None, page_size=page_size)
    assert result.tags == tuple(sorted(MANY_TAGS))
    assert result.pages == -(-len(MANY_TAGS) // page_size)
    assert [r.status for r in proxy.tag_requests()] == [200] * result.pages


def test_registry_that_clamps_the_page_size(open_registry: RunningRegistry, paging_proxy: MakeProxy) -> None:
    proxy = paging_proxy(open_registry, max_page=100)
    result = list_tags(on(proxy, "many/app"), credentials=None, page_size=1000)
    assert (len(result.tags), result.pages) == (len(MANY_TAGS), 25)


def test_registry_without_pagination(open_registry: RunningRegistry) -> None:
    result = list_tags(on(open_registry, "many/app"), credentials=None)
    assert sorted(result.tags) == sorted(MANY_TAGS)
    assert result.pages == 1


def test_null_tags_mean_no_tags(open_registry: RunningRegistry) -> None:
    result = list_tags(on(open_registry, "emptied/app"), credentials=None)
    assert (result.tags, result.pages) == ((), 1)


def test_next_link_to_another_origin_is_not_followed(open_registry: RunningRegistry, paging_proxy: MakeProxy) -> None:
    proxy = paging_proxy(open_registry, link_style="foreign")
    with pytest.raises(RegistryError, match="next-page link to another origin") as caught:
        list_tags(on(proxy, "many/app"), credentials=None, page_size=1000)
    assert caught.value.permanent
    assert len(proxy.tag_requests()) == 1


# Bearer tokens and Basic auth ----------------------------------------------------------------


def test_anonymous_token(token_registry: RunningRegistry, token_service: TokenService) -> None:
    result = list_tags(on(token_registry, "public/app"), credentials=None)
    assert sorted(result.tags) == sorted(PUBLIC_TAGS)
    assert token_service.requests == [TokenRequest("GET", "repository:public/app:pull", "", 200)]


def test_token_kept_across_pages_of_one_repository(
    token_registry: RunningRegistry, token_service: TokenService, paging_proxy: MakeProxy
) -> None:
    proxy = paging_proxy(token_registry, link_style="absolute")
    result = list_tags(on(proxy, "many/app"), credentials=None, page_size=1000)
    assert (len(result.tags), result.pages) == (len(MANY_TAGS), 3)
    assert [r.status for r in proxy.tag_requests()] == [401, 200, 200, 200]
    assert len(token_service.requests) == 1


def test_anonymous_refused_on_private_repository(token_registry: RunningRegistry, token_service: TokenService) -> None:
    with pytest.raises(RegistryError) as caught:
        list_tags(on(token_registry, "private/app"), credentials=None)
    err = caught.value
    assert str(err) == (
        f"registry {token_registry.host} requires credentials for repository private/app "
        "(401 UNAUTHORIZED); none were given"
    )
    assert (err.permanent, err.status) == (True, 401)


def test_token_with_credentials_from_docker_config(
    registry_env: RegistryEnv, token_registry: RunningRegistry, token_service: TokenService, docker_config: WriteConfig
) -> None:
    path = docker_config({"auths": {token_registry.host: {"auth": b64(f"{registry_env.user}:{registry_env.password}")}}})
    creds = credentials_from_docker_config(token_registry.host)
    assert creds is not None and creds.source == f"docker config {path}"
    result = list_tags(on(token_registry, "private/app"), credentials=creds)
    assert sorted(result.tags) == sorted(PRIVATE_TAGS)
    assert token_service.requests == [TokenRequest("GET", "repository:private/app:pull", "alice", 200)]


def test_token_with_identity_token(
    registry_env: RegistryEnv, token_registry: RunningRegistry, token_service: TokenService, docker_config: WriteConfig
) -> None:
    docker_config({"auths": {f"http://{token_registry.host}/v1/": {"identitytoken": registry_env.identity_token}}})
    creds = credentials_from_docker_config(token_registry.host)
    result = list_tags(on(token_registry, "private/app"), credentials=creds)
    assert sorted(result.tags) == sorted(PRIVATE_TAGS)
    assert [(r.method, r.status) for r in token_service.requests] == [("POST", 200)]


def test_one_token_per_repository(
    registry_env: RegistryEnv, token_registry: RunningRegistry, token_service: TokenService
) -> None:
    creds = Credentials(source="test", username=registry_env.user, password=registry_env.password)
    with httpx.Client() as client:
        public = list_tags(on(token_registry, "public/app"), credentials=creds, client=client)
        private = list_tags(on(token_registry, "private/app"), credentials=creds, client=client)
    assert (sorted(public.tags), sorted(private.tags)) == (sorted(PUBLIC_TAGS), sorted(PRIVATE_TAGS))
    assert [r.scope for r in token_service.requests] == ["repository:public/app:pull", "repository:private/app:pull"]


def test_token_with_wrong_credentials(
    registry_env: RegistryEnv, token_registry: RunningRegistry, token_service: TokenService, docker_config: WriteConfig
) -> None:
    wrong = "wrong-" + registry_env.password
    path = docker_config({"auths": {token_registry.host: {"auth": b64(f"alice:{wrong}")}}})
    with pytest.raises(RegistryError) as caught:
        list_tags(on(token_registry, "private/app"), credentials=credentials_from_docker_config(token_registry.host))
    assert str(caught.value).startswith(
        f"registry {token_registry.host} refused the credentials from docker config {path} (401 UNAUTHORIZED)"
    )
    assert (caught.value.permanent, caught.value.status) == (True, 401)
    assert_no_secret(caught.value, wrong, b64(f"alice:{wrong}"), registry_env.password)


def test_basic_auth_over_tls(
    registry_env: RegistryEnv, basic_registry: RunningRegistry, test_ca: KeyPair, docker_config: WriteConfig
) -> None:
    docker_config({"auths": {basic_registry.host: {"username": registry_env.user, "password": registry_env.password}}})
    with httpx.Client(verify=ssl_context(test_ca)) as client:
        result = list_tags(
            on(basic_registry, "private/app"), credentials=credentials_from_docker_config(basic_registry.host), client=client
        )
    assert sorted(result.tags) == sorted(PRIVATE_TAGS)


def test_basic_auth_with_wrong_credentials(
    registry_env: RegistryEnv, basic_registry: RunningRegistry, test_ca: KeyPair, docker_config: WriteConfig
) -> None:
    wrong = "wrong-" + registry_env.password
    path = docker_config({"auths": {basic_registry.host: {"auth": b64(f"alice:{wrong}")}}})
    with httpx.Client(verify=ssl_context(test_ca)) as client, pytest.raises(RegistryError) as caught:
        list_tags(
            on(basic_registry, "private/app"), credentials=credentials_from_docker_config(basic_registry.host), client=client
        )
    assert str(caught.value) == (
        f"registry {basic_registry.host} refused the credentials from docker config {path} (401 UNAUTHORIZED)"
    )
    assert (caught.value.permanent, caught.value.status) == (True, 401)
    assert_no_secret(caught.value, wrong, b64(f"alice:{wrong}"))


def test_basic_auth_without_credentials(basic_registry: RunningRegistry, test_ca: KeyPair) -> None:
    with httpx.Client(verify=ssl_context(test_ca)) as client, pytest.raises(RegistryError, match="none were given"):
        list_tags(on(basic_registry, "private/app"), credentials=None, client=client)


def test_untrusted_certificate_is_permanent(basic_registry: RunningRegistry) -> None:
    with pytest.raises(RegistryError, match=f"TLS certificate of {basic_registry.host} could not be verified") as caught:
        list_tags(on(basic_registry, "private/app"), credentials=None, retries=0)
    assert caught.value.permanent


# Errors and retries --------------------------------------------------------------------------


def test_unknown_repository(open_registry: RunningRegistry) -> None:
    with pytest.raises(RegistryError) as caught:
        list_tags(on(open_registry, "no/such-app"), credentials=None)
    assert str(caught.value) == f"repository no/such-app does not exist on registry {open_registry.host} (404 NAME_UNKNOWN)"
    assert (caught.value.permanent, caught.value.status) == (True, 404)


def test_rate_limit_then_success(open_registry: RunningRegistry, paging_proxy: MakeProxy) -> None:
    proxy = paging_proxy(open_registry)
    proxy.faults.rate_limited, proxy.faults.retry_after = 2, "1"
    result = list_tags(on(proxy, "public/app"), credentials=None, retries=2)
    assert sorted(result.tags) == sorted(PUBLIC_TAGS)
    # The proxy refuses any request sent before its Retry-After has passed ("early").
    assert [(r.status, r.early) for r in proxy.tag_requests()] == [(429, False), (429, False), (200, False)]


def test_rate_limit_outlasting_the_retries(open_registry: RunningRegistry, paging_proxy: MakeProxy) -> None:
    proxy = paging_proxy(open_registry)
    proxy.faults.rate_limited = 5
    with pytest.raises(RegistryError, match=r"is rate-limiting requests \(429 TOOMANYREQUESTS; 2 attempts\)") as caught:
        list_tags(on(proxy, "public/app"), credentials=None, retries=1)
    assert (caught.value.permanent, caught.value.status, caught.value.retry_after) == (False, 429, 1.0)


def test_long_retry_after_ends_the_scan_with_the_delay(open_registry: RunningRegistry, paging_proxy: MakeProxy) -> None:
    proxy = paging_proxy(open_registry)
    proxy.faults.rate_limited, proxy.faults.retry_after = 1, "3600"
    with pytest.raises(RegistryError) as caught:
        list_tags(on(proxy, "public/app"), credentials=None)
    assert (caught.value.permanent, caught.value.retry_after) == (False, 3600.0)
    assert len(proxy.tag_requests()) == 1


def test_server_error_then_success(open_registry: RunningRegistry, paging_proxy: MakeProxy) -> None:
    proxy = paging_proxy(open_registry)
    proxy.faults.server_errors = 1
    result = list_tags(on(proxy, "public/app"), credentials=None, retries=1)
    assert sorted(result.tags) == sorted(PUBLIC_TAGS)
    assert [r.status for r in proxy.tag_requests()] == [500, 200]


def test_persistent_server_error_is_temporary(open_registry: RunningRegistry, paging_proxy: MakeProxy) -> None:
    proxy = paging_proxy(open_registry)
    proxy.faults.server_errors = -1
    with pytest.raises(RegistryError) as caught:
        list_tags(on(proxy, "public/app"), credentials=None, retries=1)
    assert str(caught.value) == f"registry {proxy.host} is failing (500 UNKNOWN; 2 attempts)"
    assert (caught.value.permanent, caught.value.status) == (False, 500)
    assert [r.status for r in proxy.tag_requests()] == [500, 500]


def test_connection_refused_is_temporary() -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError, match=f"cannot reach registry {host}: .*2 attempts") as caught:
        list_tags(parse_image(f"{host}/app", insecure=True), credentials=None, retries=1)
    assert (caught.value.permanent, caught.value.status) == (False, None)


def test_truncated_json(open_registry: RunningRegistry, paging_proxy: MakeProxy) -> None:
    proxy = paging_proxy(open_registry)
    proxy.faults.truncate_page = 2
    with pytest.raises(RegistryError, match=r"sent an invalid tag list for many/app \(page 2\)") as caught:
        list_tags(on(proxy, "many/app"), credentials=None, page_size=1000)
    assert caught.value.permanent


def test_registry_going_away_mid_scan_returns_nothing(open_registry: RunningRegistry, paging_proxy: MakeProxy) -> None:
    proxy = paging_proxy(open_registry)
    proxy.faults.vanish_after_page = 2
    with pytest.raises(RegistryError, match=f"cannot reach registry {proxy.host}") as caught:
        list_tags(on(proxy, "many/app"), credentials=None, page_size=1000, retries=1)
    assert not caught.value.permanent
    assert [r.status for r in proxy.tag_requests()] == [200, 200, -1, -1]


def test_timeout_is_temporary(open_registry: RunningRegistry, paging_proxy: MakeProxy) -> None:
    proxy = paging_proxy(open_registry)
    proxy.faults.stall = True
    with pytest.raises(RegistryError) as caught:
        list_tags(on(proxy, "public/app"), credentials=None, timeout=0.5)
    assert str(caught.value) == f"listing the tags of {proxy.host}/public/app timed out after 0.5s"
    assert not caught.value.permanent
