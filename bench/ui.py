"""The web UI: each page's server time on the simulated year of the ledger benchmark.

The store is bench/ledger.py's year (YEAR_REPOSITORIES repositories of TAGS tags, a year of
5-minute intervals), served by the UI's own application in process (httpx's ASGI transport:
the request passes the Guard, the route, the store's reads and the template, and no socket).
Each page is timed against the UI's 404 page, the least a request through the same stack costs
(no store read). Goal: <= 200 ms a page (issue 14).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from bench import BenchError, Result, interleaved, ready
from bench.ledger import NAMESPACE, QUICK_TAGS, QUICK_YEAR_DAYS, QUICK_YEAR_REPOSITORIES, TAGS, YEAR_DAYS, \
    YEAR_REPOSITORIES, year_store
from engine.reconcile.repo import RepoSpec, load_repository
from engine.store.db import open_store
from engine.ui.app import make_app
from engine.ui.guard import Guard

GOAL_SECONDS = 0.2
PAGES = {
    "overview": "/",
    "image policy": f"/policy/{NAMESPACE}/app0",
    "image policy, trace filtered": f"/policy/{NAMESPACE}/app0?verdict=selected",
    "image repository": f"/repository/{NAMESPACE}/app0",
    "events": "/events",
    "lead time": "/lead-time",
    "sql v_policy_latest": "/sql?q=SELECT+*+FROM+v_policy_latest",
}


def run(quick: bool, runs: int, workdir: Path) -> list[Result]:
    size = (QUICK_YEAR_REPOSITORIES, QUICK_TAGS, QUICK_YEAR_DAYS) if quick else (
        YEAR_REPOSITORIES, TAGS, YEAR_DAYS)
    path, fleet = year_store(*size, workdir)
    loaded = load_repository(RepoSpec(fleet.root))
    loop = asyncio.new_event_loop()
    with open_store(f"sqlite:///{path}", readonly=True) as store:
        app = Guard(make_app(lambda: loaded, store), None)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")

        def get(url: str, status: int = 200) -> None:
            answer = loop.run_until_complete(client.get(url))
            if answer.status_code != status:
                raise BenchError(f"GET {url}: {answer.status_code}, expected {status}")

        floor = ready(lambda: get("/nowhere", 404))
        results = []
        for name, url in PAGES.items():
            timing = interleaved(ready(lambda u=url: get(u)), floor, runs)
            results.append(Result(f"ui page {name}", size[0], "pages", timing, "<= 200 ms",
                                  timing.seconds <= GOAL_SECONDS, "the UI's 404 page (no store read)",
                                  note="" if results else f"the simulated year, {size[0]}x{size[1]}, {size[2]} days"))
        loop.run_until_complete(client.aclose())
    loop.close()
    return results
