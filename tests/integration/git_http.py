"""A git server over HTTP for the tests: git's own `git http-backend`, run as CGI.

A threaded HTTP server on loopback hands every request under `/` to `git http-backend` (the smart
protocol: fetch, shallow fetch, push) for the bare repositories of one directory, with
`REMOTE_USER` set so that pushes are accepted. It serves plain HTTP, or HTTPS with a given
certificate; `paths` records what was asked, so a test can tell which requests reached it.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.integration.git_env import git_environ
from tests.integration.registry_env import KeyPair, QuietServer

BACKEND_TIMEOUT = 60.0


@dataclass
class GitHttpServer:
    """`git http-backend` for the bare repositories under `root`, at `url`."""

    root: Path
    tls: KeyPair | None = None
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.tls.cert_path), str(self.tls.key_path))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def url(self, repository: str) -> str:
        """The URL of `root/<repository>` (`homelab.git`)."""
        return f"{'https' if self.tls else 'http'}://{self.host}/{repository}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: `paths` is the record."""

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                url = urlsplit(self.path)
                with server._lock:
                    server.paths.append(url.path)
                env = {**git_environ(), "GIT_PROJECT_ROOT": str(server.root), "GIT_HTTP_EXPORT_ALL": "1",
                       "REMOTE_USER": "tests", "REMOTE_ADDR": self.client_address[0],
                       "REQUEST_METHOD": self.command, "PATH_INFO": url.path,
                       "QUERY_STRING": url.query, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)), "SERVER_PROTOCOL": "HTTP/1.1",
                       "GATEWAY_INTERFACE": "CGI/1.1"}
                for header in ("Content-Encoding", "Git-Protocol"):
                    if header in self.headers:
                        env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
                done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                                      timeout=BACKEND_TIMEOUT, check=False)
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle

        return Handler

