"""Fixtures for the real parts: a seeded docker-registry, served open, with tokens, with Basic/TLS.

The storage is seeded once per session through the open registry; the token and Basic registries
serve the same storage directory. Without `docker-registry` installed the tests skip, except
under CI=true, where a part that cannot start is a failure.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.integration.registry_env import (
    KeyPair,
    PagingProxy,
    RegistryEnv,
    RegistryEnvError,
    RunningRegistry,
    TokenService,
)


@pytest.fixture(scope="session")
def registry_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryEnv]:
    binary = shutil.which("docker-registry")
    require(binary is not None, "docker-registry is not installed (apt-get install docker-registry)")
    assert binary is not None
    env = RegistryEnv(binary=binary, workdir=tmp_path_factory.mktemp("registry"))
    yield env
    env.stop()


def _started(start: Callable[[], Any], what: str) -> Any:
    try:
        return start()
    except RegistryEnvError as err:
        require(False, f"the {what} could not be started: {err}")


@pytest.fixture(scope="session")
def open_registry(registry_env: RegistryEnv) -> RunningRegistry:
    """Plain HTTP, no auth, seeded: many/app (2,500 tags), public/app, private/app, emptied/app."""
    registry: RunningRegistry = _started(registry_env.start_open, "open docker-registry")
    return registry


@pytest.fixture(scope="session")
def token_setup(registry_env: RegistryEnv, open_registry: RunningRegistry) -> tuple[RunningRegistry, TokenService]:
    setup: tuple[RunningRegistry, TokenService] = _started(registry_env.start_token, "token-auth docker-registry")
    return setup


@pytest.fixture
def token_registry(token_setup: tuple[RunningRegistry, TokenService]) -> RunningRegistry:
    """Plain HTTP, Bearer tokens: public/app and many/app anonymous, private/app for alice."""
    return token_setup[0]


@pytest.fixture
def token_service(token_setup: tuple[RunningRegistry, TokenService]) -> TokenService:
    """The token service of `token_registry`, its request log cleared for this test."""
    token_setup[1].clear()
    return token_setup[1]


@pytest.fixture(scope="session")
def basic_setup(registry_env: RegistryEnv, open_registry: RunningRegistry) -> tuple[RunningRegistry, KeyPair]:
    setup: tuple[RunningRegistry, KeyPair] = _started(registry_env.start_basic_tls, "Basic-auth TLS docker-registry")
    return setup


@pytest.fixture
def basic_registry(basic_setup: tuple[RunningRegistry, KeyPair]) -> RunningRegistry:
    """HTTPS with a test CA, htpasswd Basic auth for alice."""
    return basic_setup[0]


@pytest.fixture
def test_ca(basic_setup: tuple[RunningRegistry, KeyPair]) -> KeyPair:
    """The CA that signed `basic_registry`'s certificate."""
    return basic_setup[1]


@pytest.fixture
def paging_proxy() -> Iterator[Callable[..., PagingProxy]]:
    """A factory: `paging_proxy(registry, link_style=..., max_page=...)`; all stop after the test."""
    proxies: list[PagingProxy] = []

    def make(upstream: RunningRegistry, **options: Any) -> PagingProxy:
        proxy = PagingProxy(upstream, **options)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], Path]:
    """A writer for `$DOCKER_CONFIG/config.json` in a fresh directory; DOCKER_CONFIG is set."""
    directory = tmp_path / "docker"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))

    def write(doc: dict[str, Any]) -> Path:
        path = directory / "config.json"
        path.write_text(json.dumps(doc, indent=2))
        return path

    return write
