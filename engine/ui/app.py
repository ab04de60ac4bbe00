"""The UI as an ASGI application: routes to pages, templates and static files from the package.

Starlette, Jinja2 and uvicorn (docs/ui.md says why): server-rendered HTML with its plots as
SVG, one small script of our own, nothing fetched from elsewhere.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import uvicorn
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine import __version__
from engine.reconcile.repo import Loaded, read_marked_tree
from engine.redact import scrub
from engine.rules.ocitag import is_valid_tag
from engine.store.db import Store
from engine.store.status import short_revision
from engine.ui.console import console_page
from engine.ui.history import automation_page, kustomization_page
from engine.ui.guard import Guard
from engine.model import ImagePolicy, ImageRepository, ImageUpdate, Kustomization
from engine.ui.leadplot import duration
from engine.ui.live import stream
from engine.ui.pages import (
    events_page,
    find_rule,
    lead_time_page,
    overview,
    policy_page,
    repository_page,
)

HERE = Path(__file__).parent
R = TypeVar("R", ImagePolicy, ImageRepository, ImageUpdate, Kustomization)
GRACE_SECONDS = 10
"""How long a stop waits for open requests (a live stream ends within a poll of the stop)."""


def when(value: datetime | None) -> Markup:
    """A time as `<time>` in UTC; static/time.js shows it in the viewer's zone."""
    if value is None:
        return Markup("")
    utc = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    utc = utc.astimezone(timezone.utc)
    return Markup('<time datetime="{}">{}</time>').format(
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"), utc.strftime("%Y-%m-%d %H:%M UTC"))


def _templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["when"] = when
    env.filters["short"] = short_revision
    env.filters["scrub"] = scrub
    env.filters["duration"] = duration
    env.filters["valid_tag"] = is_valid_tag
    env.globals["version"] = __version__
    return env


class DeployedTags:
    """The tag each policy's markers deploy in the checkout (`Loaded.root`), read again at most
    every REREAD_SECONDS: under `gitward run` the checkout moves, and a page must not parse a
    large tree on every request."""

    REREAD_SECONDS = 10.0

    def __init__(self, rules: Callable[[], Loaded]) -> None:
        self._rules = rules
        self._lock = threading.Lock()
        self._read_at = -self.REREAD_SECONDS
        self._tags: Mapping[str, str] = {}

    def __call__(self) -> Mapping[str, str]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.REREAD_SECONDS:
                loaded = self._rules()
                self._tags = {policy: tag for cluster in loaded.clusters for policy, tag
                              in read_marked_tree(loaded.root, cluster.rules).deployed.items()}
                self._read_at = time.monotonic()
            return self._tags


def make_app(rules: Callable[[], Loaded], store: Store | None,
             stopping: Callable[[], bool] = lambda: False) -> Starlette:
    """The pages over the rules `rules()` returns at each request (the daemon's change as it
    re-reads them) and the (read-only) `store`; no security of its own: `serve` wraps it in the
    Guard. A live stream ends once `stopping()` is true, so a stop does not wait on it."""
    env = _templates()
    deployed = DeployedTags(rules)

    def render(name: str, status: int = 200, **context: object) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    def the(request: Request, kind: type[R]) -> R | None:
        """The object of `kind` the path names, None when the rules hold no such one."""
        found = find_rule(rules(), str(getattr(kind, "KIND")), **request.path_params)
        return found if isinstance(found, kind) else None

    def index(request: Request) -> Response:
        return render("overview.html", title="Overview", page=overview(rules(), store, deployed()))

    def policy(request: Request) -> Response:
        found = the(request, ImagePolicy)
        if found is None:
            return not_found(request)
        verdict = request.query_params.get("verdict", "")
        return render("policy.html", title=f"ImagePolicy {found.key.ref}",
                      page=policy_page(store, found, verdict, deployed().get(found.key.ref)),
                      verdict=verdict)

    def repository(request: Request) -> Response:
        found = the(request, ImageRepository)
        if found is None:
            return not_found(request)
        return render("repository.html", title=f"ImageRepository {found.key.ref}",
                      page=repository_page(rules(), store, found))

    def live(request: Request) -> Response:
        return stream(request, store, stopping)

    def kustomization(request: Request) -> Response:
        found = the(request, Kustomization)
        if found is None:
            return not_found(request)
        return render("kustomization.html", title=f"Kustomization {found.key.ref}",
                      page=kustomization_page(store, found))

    def automation(request: Request) -> Response:
        found = the(request, ImageUpdate)
        if found is None:
            return not_found(request)
        return render("automation.html", title=f"ImageUpdateAutomation {found.key.ref}",
                      page=automation_page(store, found))

    def events(request: Request) -> Response:
        query = request.query_params
        chosen = {k: query.get(k, "") for k in ("kind", "name", "severity")}
        return render("events.html", title="Events", chosen=chosen,
                      page=events_page(rules(), store, **chosen))

    def lead_time(request: Request) -> Response:
        return render("leadtime.html", title="Lead time", page=lead_time_page(
            rules(), store, request.query_params.get("policy", "")))

    def console(request: Request) -> Response:
        return render("sql.html", title="SQL",
                      page=console_page(store, request.query_params.get("q", "")))

    def not_found(request: Request, exc: Exception | None = None) -> Response:
        return render("missing.html", 404, title="Not found", what=request.url.path)

    return Starlette(routes=[
        Route("/", index),
        Route("/policy/{namespace}/{name}", policy),
        Route("/repository/{namespace}/{name}", repository),
        Route("/kustomization/{namespace}/{name}", kustomization),
        Route("/automation/{namespace}/{name}", automation),
        Route("/events", events),
        Route("/events/stream", live),
        Route("/lead-time", lead_time),
        Route("/sql", console),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ], exception_handlers={404: not_found})


def _server(rules: Callable[[], Loaded], store: Store | None, token: str | None) -> uvicorn.Server:
    servers: list[uvicorn.Server] = []
    app = make_app(rules, store, stopping=lambda: servers[0].should_exit)
    servers.append(uvicorn.Server(uvicorn.Config(
        Guard(app, token), log_level="warning", server_header=False, proxy_headers=False,
        timeout_graceful_shutdown=GRACE_SECONDS)))
    return servers[0]


def listening(host: str, port: int) -> socket.socket:
    """A socket listening on host:port, or OSError (before any server thread starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def serve(loaded: Loaded, store: Store | None, listener: socket.socket, token: str | None) -> None:
    """Serve the UI on `listener` until Ctrl-C or SIGTERM."""
    _server(lambda: loaded, store, token).run(sockets=[listener])


@contextmanager
def serving_beside(rules: Callable[[], Loaded], store: Store | None, listener: socket.socket,
                   token: str | None) -> Iterator[None]:
    """Serve the UI on a thread of its own while the block runs (`gitward run --ui-addr`):
    signals and shutdown stay the loop's; the server stops when the block ends."""
    server = _server(rules, store, token)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="gitward-ui",
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
