"""Fixtures for the real parts: a seeded docker-registry, served open, with tokens, with Basic/TLS.

The storage is seeded once per session through the open registry; the token and Basic registries
serve the same storage directory. Without `docker-registry` installed the tests skip, except
under CI=true, where a part that cannot start is a failure. The Kubernetes API server (`kube_api`,
see kube_env.py) and the git remotes (`bare_repo`, `sshd`, `ssh_repo`, see git_env.py) follow the
same rule, and so does the throw-away PostgreSQL server (`pg_server`, `pg_url`). examples/homelab
wired to them (`homelab`) and `gitward run` subprocesses (`running`) are in homelab_env.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from engine.store.db import Store, open_store
from tests.conftest import EXAMPLES, require
from tests.integration.git_env import (
    SSHD,
    BareRepo,
    GitEnvError,
    SshRepo,
    SshServer,
    free_port,
    make_bare_repo,
    start_sshd,
)
from tests.integration.homelab_env import (
    Homelab,
    HomelabFactory,
    Processes,
    make_homelab,
)
from tests.integration.kube_env import KubeAPI, KubeEnvError
from tests.integration.proxy_env import ProxyEnvError, RunningProxy, start_proxy
from tests.integration.registry_env import (
    KeyPair,
    PagingProxy,
    RegistryEnv,
    RegistryEnvError,
    RunningRegistry,
    TokenService,
    make_cert,
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


@dataclass(frozen=True)
class TlsRegistries:
    """Anonymous registries over TLS, each signed by a CA of its own: `plain` serves anyone,
    `mutual` only clients with a certificate `client_ca` signed (`client` is one)."""

    plain: RunningRegistry
    plain_ca: KeyPair
    mutual: RunningRegistry
    mutual_ca: KeyPair
    client_ca: KeyPair
    client: KeyPair


@pytest.fixture(scope="session")
def tls_registries(registry_env: RegistryEnv, open_registry: RunningRegistry) -> TlsRegistries:
    """TLS registries over the seeded storage (certSecretRef's cases)."""
    plain, plain_ca = _started(lambda: registry_env.start_tls("tls"), "TLS docker-registry")
    client_ca = make_cert(registry_env.workdir, "client-ca")
    client = make_cert(registry_env.workdir, "client", issuer=client_ca, client=True)
    mutual, mutual_ca = _started(lambda: registry_env.start_tls("mtls", client_ca=client_ca),
                                 "mutual-TLS docker-registry")
    return TlsRegistries(plain, plain_ca, mutual, mutual_ca, client_ca, client)


@pytest.fixture
def http_proxy(tmp_path: Path) -> Iterator[RunningProxy]:
    """Debian's tinyproxy on loopback with Basic auth, logging every request; stopped after."""
    require(shutil.which("tinyproxy") is not None, "tinyproxy is not installed (apt-get install tinyproxy)")
    try:
        proxy = start_proxy(tmp_path / "proxy")
    except ProxyEnvError as err:
        require(False, f"the proxy could not be started: {err}")
        raise  # require() skips or fails; this line only tells the type checker
    yield proxy
    proxy.stop()


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


# Kubernetes ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kube_api() -> Iterator[KubeAPI]:
    """etcd + kube-apiserver v1.20 on loopback for the session; `.kubeconfig`, `.url`, `.token`.

    Built once per machine by `bash tests/env/kube.sh build`. Without the binaries the tests skip,
    except under CI=true, where a server that cannot start is a failure.
    """
    try:
        api = KubeAPI().start()
    except KubeEnvError as err:
        require(False, f"the Kubernetes API server could not be started: {err}")
        raise  # require() skips or fails; this line only tells the type checker
    yield api
    api.stop()


@pytest.fixture
def kube_client(kube_api: KubeAPI) -> Iterator[client.ApiClient]:
    """The official client, configured from `kube_api`'s kubeconfig (which skips TLS verification)."""
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    api_client = config.new_client_from_config(config_file=str(kube_api.kubeconfig))  # type: ignore[no-untyped-call]
    yield api_client
    api_client.close()


@pytest.fixture
def kube_namespace(kube_client: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, deleted after it (it stays Terminating: no controllers)."""
    core = client.CoreV1Api(kube_client)
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"t-{slug}-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as err:
        if err.status != 404:
            raise


# Git remotes -----------------------------------------------------------------------------------


@pytest.fixture
def bare_repo(tmp_path: Path) -> BareRepo:
    """A bare repo seeded from examples/homelab: one commit on `main`, reached at `.url` (file://)."""
    require(shutil.which("git") is not None, "git is not installed (apt-get install git)")
    return make_bare_repo(tmp_path / "homelab.git", EXAMPLES / "homelab")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A private sshd on loopback with a read-only deploy key and a read-write key, for the session."""
    missing = [
        package
        for package, present in (
            ("openssh-server", SSHD.is_file()),
            ("openssh-client", shutil.which("ssh") is not None and shutil.which("ssh-keygen") is not None),
            ("git", shutil.which("git") is not None),
        )
        if not present
    ]
    require(not missing, f"{', '.join(missing)} not installed (apt-get install {' '.join(missing)})")
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except GitEnvError as err:
        require(False, f"the test sshd could not be started: {err}")
        raise  # require() skips or fails; this line only tells the type checker
    yield server
    server.stop()


@pytest.fixture
def ssh_repo(sshd: SshServer, bare_repo: BareRepo) -> SshRepo:
    """`bare_repo` served over ssh://: `.url`, `.ro_ssh_command` (fetch only), `.rw_ssh_command`."""
    return SshRepo(bare_repo, sshd.serve(bare_repo.path), sshd.ro_ssh_command, sshd.rw_ssh_command)


# PostgreSQL ------------------------------------------------------------------------------------

PG_PASSWORD = "pg-" + secrets.token_hex(8)


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    return candidates[0].parent if candidates else None


@dataclass(frozen=True)
class PgServer:
    """A running PostgreSQL on loopback; `url(db)` is a gitward state URL for one database."""

    host: str
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://gitward:{PG_PASSWORD}@{self.host}:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host, port=self.port, user="gitward", password=PG_PASSWORD,
            dbname="postgres", autocommit=True,
        )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """initdb + pg_ctl in a temp dir on a free loopback port (as `postgres` when run as root)."""
    bindir = _pg_bindir()
    require(bindir is not None, "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's postgresql")
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="gitward-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        as_postgres = ["runuser", "-u", "postgres", "--"]
    (root / "pw").write_text(PG_PASSWORD + "\n")
    if as_postgres:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    data, port = root / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_postgres, *args], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "gitward", f"--pwfile={root / 'pw'}",
        "--auth=scram-sha-256", "-E", "UTF8", "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60",
        "-o", f"-k {root} -p {port} -h 127.0.0.1 -F", "start")
    try:
        yield PgServer("127.0.0.1", port)
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database on `pg_server`, dropped after the test."""
    name = "t_" + secrets.token_hex(6)
    with pg_server.admin() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield pg_server.url(name)
    with pg_server.admin() as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def homelab_remote(tmp_path: Path) -> tuple[BareRepo, Path]:
    """A bare repo of examples/homelab whose GitRepository points at the bare repo itself, and
    the seed checkout it was made from (rules are read from there)."""
    require(shutil.which("git") is not None, "git is not installed (apt-get install git)")
    seed = tmp_path / "seed"
    shutil.copytree(EXAMPLES / "homelab", seed)
    bare_path = tmp_path / "homelab.git"
    sync = seed / "cluster/system/flux-system/gotk-sync.yaml"
    sync.write_text(sync.read_text().replace("ssh://git@github.com/example/homelab",
                                             bare_path.as_uri()))
    return make_bare_repo(bare_path, seed), seed


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh state store URL on each dialect: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    value: str = request.getfixturevalue("pg_url")
    return value


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    """The state store at `url`, migrated to head."""
    with open_store(url) as opened:
        yield opened


# examples/homelab under `gitward run` ----------------------------------------------------------


@pytest.fixture
def homelab(tmp_path: Path) -> HomelabFactory:
    """A factory: `homelab(registry_host, state=None)` wires examples/homelab to the registry and
    a fresh bare repo (see `make_homelab`); the state is a SQLite file unless a store URL is given."""
    require(shutil.which("git") is not None, "git is not installed (apt-get install git)")

    def make(registry_host: str, state: str | None = None) -> Homelab:
        return make_homelab(tmp_path, registry_host, state or str(tmp_path / "state.db"))

    return make


@pytest.fixture
def running() -> Iterator[Processes]:
    """`running(argv, log)` starts `gitward run` with stderr to `log`; all are killed after the test."""
    processes = Processes()
    yield processes
    processes.kill_all()
