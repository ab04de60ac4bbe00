"""A real OCI registry for the tests, and the real-world behaviour it lacks, built around it.

Debian's `docker-registry` (distribution v2.8.2) serves every request that reaches it. Around it:
a token service issuing ES256 JWTs the registry verifies (the ghcr.io / Docker Hub flow), an
htpasswd file for Basic auth over TLS, and a paging proxy that re-pages `tags/list` the way
distribution v3, ghcr.io and Quay do (v2.8 answers all tags in one page) and injects the faults
real registries show: 429 with Retry-After, 500s, truncated JSON, a connection cut mid-scan, a
stall. Auth and error answers still come from the real registry through the proxy.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import bcrypt
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.processes import stop_process

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
START_TIMEOUT = 10.0


class RegistryEnvError(Exception):
    """A part of the test environment could not be started."""


class QuietServer(ThreadingHTTPServer):
    """A threaded test server that does not print the tracebacks of connections it cut itself."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections the proxy drops on purpose end in socket errors; they are the point."""

    @classmethod
    def serving(cls, handler: type[BaseHTTPRequestHandler]) -> QuietServer:
        """A server on a free loopback port, already answering from a daemon thread."""
        server = cls(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RegistryEnvError(f"docker-registry exited with {process.returncode}: {tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RegistryEnvError(f"docker-registry did not listen on 127.0.0.1:{port} within {START_TIMEOUT:g}s")


# Certificates and keys ------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    """A certificate, its EC P-256 key, and where both are written as PEM."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path


def make_cert(
    directory: Path, name: str, *, issuer: KeyPair | None = None, server: bool = False,
    client: bool = False,
) -> KeyPair:
    """A CA certificate (self-signed) or, given `issuer`, a server certificate for 127.0.0.1 or a
    client certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False
        )
    )
    if server:
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(_key_usage(digital_signature=True, cert_sign=False), critical=True)
        )
    elif client:
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(_key_usage(digital_signature=True, cert_sign=False), critical=True)
        )
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).add_extension(
            _key_usage(digital_signature=True, cert_sign=True), critical=True
        )
    cert = builder.sign(signer_key, hashes.SHA256())
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return KeyPair(cert, key, cert_path, key_path)


def _key_usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """An htpasswd file with bcrypt entries, as `htpasswd -B` writes them."""
    lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4, prefix=b'2a')).decode()}" for u, p in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# The registry process ---------------------------------------------------------------------------


@dataclass
class RunningRegistry:
    """A `docker-registry serve` process on a loopback port."""

    process: subprocess.Popen[bytes]
    host: str
    scheme: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def stop(self) -> None:
        stop_process(self.process)


def start_registry(
    binary: str,
    workdir: Path,
    storage: Path,
    *,
    name: str,
    auth: dict[str, Any] | None = None,
    tls: KeyPair | None = None,
    client_ca: KeyPair | None = None,
) -> RunningRegistry:
    """Serve `storage` (a filesystem layout several registries may share) on a free port; with
    `client_ca`, only to clients showing a certificate it signed."""
    port = free_port()
    http_cfg: dict[str, Any] = {"addr": f"127.0.0.1:{port}", "secret": "test-only"}
    if tls is not None:
        http_cfg["tls"] = {"certificate": str(tls.cert_path), "key": str(tls.key_path)}
        if client_ca is not None:
            http_cfg["tls"]["clientcas"] = [str(client_ca.cert_path)]
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": http_cfg,
        "health": {"storagedriver": {"enabled": False}},
    }
    if auth is not None:
        config["auth"] = auth
    config_path = workdir / f"{name}.yml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    running = RunningRegistry(process, f"127.0.0.1:{port}", "https" if tls else "http", log_path)
    try:
        wait_listening(port, process, log_path)
    except RegistryEnvError:
        running.stop()
        raise
    return running


# Seeding tags over the registry API ---------------------------------------------------------------


def _upload_blob(client: httpx.Client, base: str, repository: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = client.post(f"{base}/v2/{repository}/blobs/uploads/")
    if started.status_code != 202:
        raise RegistryEnvError(f"blob upload to {repository} answered {started.status_code}: {started.text}")
    location = httpx.URL(base).join(started.headers["location"])
    done = client.put(
        location.copy_merge_params({"digest": digest}),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    if done.status_code != 201:
        raise RegistryEnvError(f"blob upload to {repository} answered {done.status_code}: {done.text}")
    return digest


def image_config(created: str | None = None) -> bytes:
    """An image configuration, with `created` (RFC 3339) when given, as `docker build` writes it."""
    doc: dict[str, Any] = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    if created is not None:
        doc = {"created": created, **doc}
    return json.dumps(doc).encode()


def seed_tags(base: str, repository: str, tags: Iterable[str], *, workers: int = 8,
              created: dict[str, str] | None = None) -> dict[str, str]:
    """Push one tiny OCI image per tag (distinct manifests); returns tag -> manifest digest.

    `created` gives a tag's image a configuration of its own that says when it was built; the
    others share one that says nothing.
    """
    with httpx.Client(timeout=30, trust_env=False) as client:
        layer = b"gitward test layer\n"
        shared = image_config()
        layer_digest = _upload_blob(client, base, repository, layer)
        shared_digest = _upload_blob(client, base, repository, shared)
        own = {tag: image_config(when) for tag, when in (created or {}).items()}
        own_digests = {tag: _upload_blob(client, base, repository, blob) for tag, blob in own.items()}

        def push(tag: str) -> tuple[str, str]:
            config = own.get(tag, shared)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": own_digests.get(tag, shared_digest),
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": layer_digest,
                            "size": len(layer),
                        }
                    ],
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                }
            ).encode()
            put = client.put(
                f"{base}/v2/{repository}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
            )
            if put.status_code != 201:
                raise RegistryEnvError(f"pushing {repository}:{tag} answered {put.status_code}: {put.text}")
            return tag, put.headers["docker-content-digest"]

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return dict(pool.map(push, tags))


def delete_manifests(base: str, repository: str, digests: Iterable[str]) -> None:
    """Delete manifests by digest; the registry then untags every tag that pointed at them."""
    with httpx.Client(timeout=30, trust_env=False) as client:
        for digest in set(digests):
            gone = client.delete(f"{base}/v2/{repository}/manifests/{digest}")
            if gone.status_code != 202:
                raise RegistryEnvError(f"deleting {repository}@{digest} answered {gone.status_code}: {gone.text}")


# Seeding tags on the filesystem ------------------------------------------------------------------


def write_tags(storage: Path, repository: str, tags: Iterable[str]) -> str:
    """Tag one tiny OCI image as each of `tags` by writing the registry's storage layout directly.

    Several times faster than pushing over HTTP, for benchmarks with many tags. Only each tag's
    `current/link` is written, which is what listing tags and fetching a manifest by tag read;
    the per-tag `index/` a push also writes is left out, so do not delete these tags. Call it before
    a registry serves `storage` or while it does (the registry caches nothing without a cache
    configured). Returns the manifest digest every tag points at.
    """
    root = storage / "docker" / "registry" / "v2"
    layer = b"gitward test layer\n"
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config), "size": len(config)},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _digest(layer), "size": len(layer)}
            ],
        }
    ).encode()
    repo = root / "repositories" / repository
    for blob in (layer, config, manifest):
        hexdigest = _digest(blob).removeprefix("sha256:")
        blob_dir = root / "blobs" / "sha256" / hexdigest[:2] / hexdigest
        blob_dir.mkdir(parents=True, exist_ok=True)
        (blob_dir / "data").write_bytes(blob)
        kind = "_manifests/revisions" if blob is manifest else "_layers"
        _write_link(repo / kind / "sha256" / hexdigest, _digest(blob))
    digest = _digest(manifest)
    for tag in tags:
        _write_link(repo / "_manifests" / "tags" / tag / "current", digest)
    return digest


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_link(directory: Path, digest: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "link").write_text(digest)


# The token service ------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenRequest:
    """What the token service was asked, for assertions: who, for which scope, and the answer."""

    method: str
    scope: str
    account: str
    status: int


@dataclass
class TokenPolicy:
    """Who may pull what: `anonymous` repositories for anyone, `users` name -> (password, repos)."""

    anonymous: frozenset[str]
    users: dict[str, tuple[str, frozenset[str]]]
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # identity token -> user name


class TokenService:
    """`GET/POST /token` per the docker token spec, answering with ES256 JWTs the registry trusts."""

    def __init__(self, workdir: Path, policy: TokenPolicy, *, service: str, issuer: str) -> None:
        self.policy = policy
        self.service = service
        self.issuer = issuer
        self.signer = make_cert(workdir, "token-signer")
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._server = QuietServer.serving(self._handler())

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def registry_auth(self) -> dict[str, Any]:
        """The registry's `auth:` section that makes it trust this service's tokens."""
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.signer.cert_path),
            }
        }

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue(self, account: str, repository: str, actions: list[str]) -> str:
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self.signer.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 30,
            "iat": now,
            "jti": secrets.token_hex(12),
            "access": [{"type": "repository", "name": repository, "actions": actions}] if actions else [],
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self.signer.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def answer(self, method: str, params: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        """(status, body) for one token request; unknown or wrong credentials get 401."""
        scope = params.get("scope", "")
        repository = scope.split(":")[1] if scope.count(":") == 2 else ""
        account = ""
        if method == "POST":
            if params.get("grant_type") != "refresh_token" or params.get("refresh_token") not in self.policy.refresh_tokens:
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid refresh token"}]}
            account = self.policy.refresh_tokens[params["refresh_token"]]
        elif authorization:
            scheme, _, value = authorization.partition(" ")
            user, _, password = base64.b64decode(value).decode().partition(":") if scheme == "Basic" else ("", "", "")
            known = self.policy.users.get(user)
            if known is None or known[0] != password:
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]}
            account = user
        if params.get("service") != self.service:
            return 400, {"errors": [{"code": "DENIED", "message": "unknown service"}]}
        allowed = repository in self.policy.anonymous or (
            account in self.policy.users and repository in self.policy.users[account][1]
        )
        token = self.issue(account, repository, ["pull"] if allowed else [])
        return 200, {"token": token, "access_token": token, "expires_in": 300}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: pytest shows the assertions, not an access log."""

            def _reply(self, method: str, params: dict[str, str]) -> None:
                status, body = service.answer(method, params, self.headers.get("Authorization"))
                with service._lock:
                    service.requests.append(TokenRequest(method, params.get("scope", ""), params.get("account", ""), status))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                self._reply("GET", {k: v[0] for k, v in query.items()})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                self._reply("POST", {k: v[0] for k, v in form.items()})

        return Handler


# The paging and fault-injecting proxy -----------------------------------------------------------


@dataclass
class Faults:
    """What the proxy does wrong, set per test. Counts apply to `tags/list` requests."""

    rate_limited: int = 0
    retry_after: str = "1"
    server_errors: int = 0  # -1: every request
    truncate_page: int | None = None
    vanish_after_page: int | None = None
    stall: bool = False


@dataclass
class ProxyRecord:
    path: str
    status: int
    early: bool = False  # a request that came before the Retry-After it was given had passed


class PagingProxy:
    """A threaded HTTP proxy in front of a plain-HTTP registry that re-pages `tags/list`.

    `link_style`: "absolute" (http://host/v2/...), "root" (/v2/...), "relative" (list?...), or
    "foreign" (an absolute link to another port, which a client must not follow). `max_page`
    clamps `n` the way Quay (100) and ECR (1000) do.
    """

    def __init__(self, upstream: RunningRegistry, *, link_style: str = "root", max_page: int | None = None) -> None:
        if upstream.scheme != "http":
            raise RegistryEnvError("the paging proxy fronts plain-HTTP registries only")
        self.upstream_host, _, port = upstream.host.partition(":")
        self.upstream_port = int(port)
        self.link_style = link_style
        self.max_page = max_page
        self.faults = Faults()
        self.records: list[ProxyRecord] = []
        self.pages_served = 0
        self.release = threading.Event()
        self._not_before = 0.0
        self._lock = threading.Lock()
        self._server = QuietServer.serving(self._handler())

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def tag_requests(self) -> list[ProxyRecord]:
        with self._lock:
            return [r for r in self.records if r.path.endswith("/tags/list")]

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            hop = {"connection", "transfer-encoding", "content-length", "keep-alive"}
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in hop]
            return response.status, kept, data
        finally:
            conn.close()

    def page(self, path: str, query: dict[str, list[str]], host: str, body: bytes) -> tuple[bytes, str | None]:
        """One v3-style page of the upstream's full, sorted list; and the next link, if any."""
        doc = json.loads(body)
        tags = sorted(doc.get("tags") or [])
        last = query.get("last", [""])[0]
        if last:
            tags = [t for t in tags if t > last]
        n = int(query["n"][0]) if query.get("n") else None
        if n is not None and self.max_page is not None:
            n = min(n, self.max_page)
        if n is None or n <= 0 or len(tags) <= n:
            return json.dumps({"name": doc.get("name"), "tags": tags}).encode(), None
        shown = tags[:n]
        params = urlencode({"last": shown[-1], "n": n})
        link = {
            "absolute": f"http://{host}{path}?{params}",
            "root": f"{path}?{params}",
            "relative": f"list?{params}",
            "foreign": f"http://127.0.0.1:{free_port()}{path}?{params}",
        }[self.link_style]
        return json.dumps({"name": doc.get("name"), "tags": shown}).encode(), f'<{link}>; rel="next"'

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the body waits for the
            # client's delayed ACK, about 40 ms per response.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the proxy keeps `records` instead."""

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _record(self, status: int, early: bool = False) -> None:
                with proxy._lock:
                    proxy.records.append(ProxyRecord(urlsplit(self.path).path, status, early))

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                if not (self.command == "GET" and url.path.startswith("/v2/") and url.path.endswith("/tags/list")):
                    status, kept, data = proxy.forward(self.command, self.path, headers, body)
                    self._record(status)
                    self._send(status, kept, data)
                    return
                if self._fault():
                    return
                status, kept, data = proxy.forward("GET", url.path, headers, b"")
                if status != 200:
                    self._record(status)
                    self._send(status, kept, data)
                    return
                page, link = proxy.page(url.path, parse_qs(url.query), self.headers.get("Host", proxy.host), data)
                kept = [(k, v) for k, v in kept if k.lower() != "link"] + ([("Link", link)] if link else [])
                with proxy._lock:
                    number = proxy.pages_served + 1
                    faults = proxy.faults
                if faults.vanish_after_page is not None and number > faults.vanish_after_page:
                    self._record(-1)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page[: len(page) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if faults.truncate_page == number:
                    page = page[: len(page) // 2]
                with proxy._lock:
                    proxy.pages_served = number
                self._record(200)
                self._send(200, kept, page)

            def _fault(self) -> bool:
                """Answer with the next injected fault, if one is due; True when it answered."""
                with proxy._lock:
                    faults = proxy.faults
                    now = time.monotonic()
                    early = now < proxy._not_before
                    if faults.rate_limited > 0 or early:
                        if not early:
                            faults.rate_limited -= 1
                        proxy._not_before = now + float(faults.retry_after) if faults.retry_after.isdigit() else now
                        verdict: tuple[int, list[tuple[str, str]]] | None = (429, [("Retry-After", faults.retry_after)])
                    elif faults.server_errors != 0:
                        if faults.server_errors > 0:
                            faults.server_errors -= 1
                        verdict = (500, [])
                    else:
                        verdict = None
                if faults.stall:
                    proxy.release.wait(30)
                if verdict is None:
                    return False
                status, headers = verdict
                code = "TOOMANYREQUESTS" if status == 429 else "UNKNOWN"
                body = json.dumps({"errors": [{"code": code, "message": "injected by the test proxy"}]}).encode()
                self._record(status, early)
                self._send(status, [("Content-Type", "application/json"), *headers], body)
                return True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        return Handler


# The whole environment --------------------------------------------------------------------------


MANY_TAGS = tuple(f"{i // 1000}.{(i // 100) % 10}.{i % 100}" for i in range(2499)) + ("latest",)
PUBLIC_TAGS = ("1.0.0", "1.1.0", "2.0.0")
PRIVATE_TAGS = ("0.9.0", "1.0.0")


@dataclass
class RegistryEnv:
    """One seeded storage directory, served by several registries as the tests ask for them."""

    binary: str
    workdir: Path
    user: str = "alice"
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(8))
    identity_token: str = field(default_factory=lambda: "idt-" + secrets.token_hex(12))
    registries: list[RunningRegistry] = field(default_factory=list)
    services: list[TokenService] = field(default_factory=list)

    @property
    def storage(self) -> Path:
        return self.workdir / "storage"

    def start_open(self) -> RunningRegistry:
        """An unauthenticated registry over the storage, seeded with the test repositories."""
        open_registry = self._keep(start_registry(self.binary, self.workdir, self.storage, name="open"))
        seed_tags(open_registry.url, "many/app", MANY_TAGS)
        seed_tags(open_registry.url, "public/app", PUBLIC_TAGS)
        seed_tags(open_registry.url, "private/app", PRIVATE_TAGS)
        emptied = seed_tags(open_registry.url, "emptied/app", ["gone-1", "gone-2"])
        delete_manifests(open_registry.url, "emptied/app", emptied.values())
        return open_registry

    def start_token(self) -> tuple[RunningRegistry, TokenService]:
        """A registry that trusts only the token service: public/ and many/ anonymous, private/ for alice."""
        policy = TokenPolicy(
            anonymous=frozenset({"public/app", "many/app"}),
            users={self.user: (self.password, frozenset({"public/app", "private/app"}))},
            refresh_tokens={self.identity_token: self.user},
        )
        tokens = TokenService(self.workdir, policy, service="gitward-test-registry", issuer="gitward-test-issuer")
        self.services.append(tokens)
        registry = start_registry(self.binary, self.workdir, self.storage, name="token", auth=tokens.registry_auth())
        return self._keep(registry), tokens

    def start_basic_tls(self) -> tuple[RunningRegistry, KeyPair]:
        """A registry over TLS (own CA) with htpasswd Basic auth for alice; returns it and the CA."""
        ca = make_cert(self.workdir, "test-ca")
        server = make_cert(self.workdir, "registry-server", issuer=ca, server=True)
        htpasswd = write_htpasswd(self.workdir / "htpasswd", {self.user: self.password})
        auth = {"htpasswd": {"realm": "gitward-test", "path": str(htpasswd)}}
        registry = start_registry(self.binary, self.workdir, self.storage, name="basic", auth=auth, tls=server)
        return self._keep(registry), ca

    def start_tls(self, name: str, *, client_ca: KeyPair | None = None) -> tuple[RunningRegistry, KeyPair]:
        """An anonymous registry over TLS signed by a CA of its own (returned with it); with
        `client_ca`, it serves only clients with a certificate that CA signed."""
        ca = make_cert(self.workdir, f"{name}-ca")
        server = make_cert(self.workdir, f"{name}-server", issuer=ca, server=True)
        registry = start_registry(self.binary, self.workdir, self.storage, name=name, tls=server,
                                  client_ca=client_ca)
        return self._keep(registry), ca

    def stop(self) -> None:
        for registry in self.registries:
            registry.stop()
        for service in self.services:
            service.stop()

    def _keep(self, registry: RunningRegistry) -> RunningRegistry:
        self.registries.append(registry)
        return registry


def ssl_context(ca: KeyPair) -> ssl.SSLContext:
    """A client TLS context that trusts the test CA only."""
    return ssl.create_default_context(cafile=str(ca.cert_path))
