"""The UI as an ASGI application: routes to pages, templates and static files from the package.

Starlette, Jinja2 and uvicorn (docs/ui.md says why): server-rendered HTML with its plots as
SVG, one small script of our own, nothing fetched from elsewhere.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import uvicorn
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine import __version__
from engine.reconcile.repo import Loaded
from engine.redact import scrub
from engine.store.db import Store
from engine.store.status import short_revision
from engine.ui.guard import Guard
from engine.model import ImagePolicy, ImageRepository
from engine.ui.pages import events_page, find_rule, overview, policy_page, repository_page

HERE = Path(__file__).parent


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
    env.globals["version"] = __version__
    return env


def make_app(loaded: Loaded, store: Store | None) -> Starlette:
    """The pages over `loaded` rules and the (read-only) `store`; no security of its own:
    `serve` wraps it in the Guard."""
    env = _templates()

    def render(name: str, status: int = 200, **context: object) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    def index(request: Request) -> Response:
        return render("overview.html", title="Overview", page=overview(loaded, store))

    def policy(request: Request) -> Response:
        found = find_rule(loaded, ImagePolicy.KIND, **request.path_params)
        if not isinstance(found, ImagePolicy):
            return not_found(request)
        verdict = request.query_params.get("verdict", "")
        return render("policy.html", title=f"ImagePolicy {found.key.ref}",
                      page=policy_page(store, found, verdict), verdict=verdict)

    def repository(request: Request) -> Response:
        found = find_rule(loaded, ImageRepository.KIND, **request.path_params)
        if not isinstance(found, ImageRepository):
            return not_found(request)
        return render("repository.html", title=f"ImageRepository {found.key.ref}",
                      page=repository_page(loaded, store, found))

    def events(request: Request) -> Response:
        query = request.query_params
        chosen = {k: query.get(k, "") for k in ("kind", "name", "severity")}
        return render("events.html", title="Events", chosen=chosen,
                      page=events_page(loaded, store, **chosen))

    def not_found(request: Request, exc: Exception | None = None) -> Response:
        return render("missing.html", 404, title="Not found", what=request.url.path)

    return Starlette(routes=[
        Route("/", index),
        Route("/policy/{namespace}/{name}", policy),
        Route("/repository/{namespace}/{name}", repository),
        Route("/events", events),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ], exception_handlers={404: not_found})


def serve(loaded: Loaded, store: Store | None, host: str, port: int, token: str | None) -> None:
    """Serve the UI until Ctrl-C or SIGTERM."""
    app = Guard(make_app(loaded, store), token)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False,
                proxy_headers=False)
