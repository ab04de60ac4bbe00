"""Opening the state store from the CLI's `--state` option."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from engine.store.db import Store, has_schema, open_store, state_url


def state_option_url(ctx: click.Context) -> str:
    obj = ctx.find_root().obj or {}
    return state_url(obj.get("state") if isinstance(obj, dict) else None)


def open_for_reading(ctx: click.Context) -> Store | None:
    """The store, read-only; None when there are no facts yet: a SQLite store that does not
    exist, or one without gitward's schema (a 0-byte file, an empty PostgreSQL database)."""
    url = state_option_url(ctx)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        return None
    store = open_store(url, readonly=True)
    if not has_schema(store):
        store.close()
        return None
    return store


def open_for_writing(ctx: click.Context) -> Store:
    """The store, upgraded to this gitward's schema and created if it is a new SQLite file."""
    return open_store(state_option_url(ctx))


def holder_name() -> str:
    """This process's name in leases and requests: host, pid and a random suffix (a lease is
    not re-entrant, so each writer needs a name of its own)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
