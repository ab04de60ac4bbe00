"""The listener of `gitward run --metrics-addr`: `/metrics`, `/healthz` and `/readyz` on one port.

A small threaded stdlib server instead of prometheus_client's `start_http_server`, which serves
the metrics on every path: a probe must get its own answer, `200` with a short text body, or
`503` with the reason. Each probe is computed when asked (engine/reconcile/health.py).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from engine.reconcile.health import Verdict
from engine.reconcile.telemetry import Metrics

Probe = Callable[[], Verdict]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is not worth a traceback on stderr."""


def _handler(metrics: Metrics, probes: dict[str, Probe]) -> type[BaseHTTPRequestHandler]:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # with --metrics-addr only

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a scrape every few seconds is no news for the run's log."""

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/metrics":
                self._answer(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
            elif path in probes:
                verdict = probes[path]()
                self._answer(200 if verdict.ok else 503, "text/plain; charset=utf-8",
                             (verdict.reason + "\n").encode())
            else:
                self._answer(404, "text/plain; charset=utf-8",
                             f"not found: {', '.join(['/metrics', *probes])}\n".encode())

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serving_probes(host: str, port: int, metrics: Metrics, *, healthz: Probe,
                   readyz: Probe) -> Iterator[tuple[str, int]]:
    """Serve the metrics and the probes on (host, port) from a daemon thread for the block;
    yields the address bound (port 0 picks a free one). OSError when it cannot listen."""
    handler = _handler(metrics, {"/healthz": healthz, "/readyz": readyz})
    metrics.probing(lambda: healthz().ok, lambda: readyz().ok)
    class Bound(_Server):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = Bound((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, name="gitward-probes", daemon=True)
    thread.start()
    try:
        yield host, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
