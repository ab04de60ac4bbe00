"""UI pages rendered in process (httpx's ASGI transport, no browser) where a case needs a store
made for it: what a hostile registry listed shows as invalid, escaped, never as it was sent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx

from engine.reconcile.images import record_tags
from engine.reconcile.repo import RepoSpec, load_repository
from engine.store.db import open_store, state_url
from engine.ui.app import make_app
from engine.ui.guard import Guard

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def get(app: Guard, url: str) -> httpx.Response:
    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1") as client:
            return await client.get(url)
    return asyncio.run(fetch())


def test_the_ledger_calls_a_tag_outside_the_oci_grammar_invalid(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "images.rules").write_text(
        'image repository apps/web {\n  image "registry.example.com/web"\n}\n'
        'image policy apps/web {\n  repository web\n  select highest semver ">=1.0.0"\n}\n')
    loaded = load_repository(RepoSpec(repo))
    [repository] = loaded.one().rules.image_repositories
    state = state_url(str(tmp_path / "state.db"))
    with open_store(state) as store:
        record_tags(store, repository, ["1.0.0", "2.0.0\x1b[2J", "x.sig"], started_at=NOW,
                    finished_at=NOW)
    with open_store(state, readonly=True) as store:
        page = get(Guard(make_app(lambda: loaded, store), None), "/repository/apps/web")
    assert page.status_code == 200
    rows = {row.split("</code>")[0].split("<code>")[-1]: row
            for row in page.text.split("<tr>")[1:] if "<code>" in row}
    assert "\x1b" not in page.text
    assert "<td>invalid</td>" in rows['&#34;2.0.0\\x1b[2J&#34;']
    assert "<td>excluded</td>" in rows["x.sig"]
    assert "<td>listed</td>" in rows["1.0.0"]
