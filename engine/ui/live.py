"""The events page's live stream: server-sent events of what the store records from now on.

The store is polled once a second on a worker thread (a store has no notifications that work
on SQLite and PostgreSQL alike); a comment line every 15 s keeps proxies from closing a quiet
stream. A browser that reconnects sends Last-Event-ID and misses nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from engine.store.db import Store
from engine.store.queries import Event
from engine.ui.pages import events_after

POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


def message(event: Event) -> str:
    """One event as an SSE message: its id, and its fields as JSON (the page's script builds
    the row from them as text, never as markup)."""
    utc = event.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {"time": utc, "severity": str(event.severity), "kind": event.object_kind,
            "name": event.object_name, "reason": event.reason, "message": event.message}
    return f"id: {event.id}\ndata: {json.dumps(data)}\n\n"


def _start(request: Request) -> int:
    given = request.headers.get("last-event-id") or request.query_params.get("after", "")
    return int(given) if given.isdigit() else 0


def stream(request: Request, store: Store | None, stopping: Callable[[], bool]) -> StreamingResponse:
    """`GET /events/stream?kind=&name=&severity=&after=ID`: the events page's filters, live,
    until the browser leaves or the server is `stopping()`."""
    query = request.query_params
    filters = (query.get("kind", ""), query.get("name", ""), query.get("severity", ""))

    async def messages() -> AsyncIterator[str]:
        after = _start(request)
        quiet_since = time.monotonic()
        yield "retry: 2000\n\n"
        while not stopping() and not await request.is_disconnected():
            found, after = await run_in_threadpool(events_after, store, after, *filters)
            for event in found:
                yield message(event)
            if found:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield ": still here\n\n"
            await anyio.sleep(POLL_SECONDS)

    return StreamingResponse(messages(), media_type="text/event-stream")
