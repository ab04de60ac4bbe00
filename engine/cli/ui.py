"""`gitward ui`: the store's facts and decisions as read-only pages in a browser."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from engine.cli.repo import load, repo_option
from engine.cli.state import open_for_reading
from engine.errors import UserError

TOKEN_ENV = "GITWARD_UI_TOKEN"


def parse_addr(addr: str, option: str = "--addr") -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6) -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{option} {addr!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def ui_listener(addr: str, token: str | None, option: str = "--addr",
                token_option: str = "--token") -> tuple[socket.socket, str | None]:
    """The UI's listening socket and the token every request must carry (None on loopback
    without one); a UserError for an address off loopback without a token, or one that cannot
    be listened on."""
    from engine.ui.app import listening
    from engine.ui.guard import is_loopback

    host, port = parse_addr(addr, option)
    token = token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and token is None:
        raise UserError(f"{option} {addr} is not a loopback address: set a token with "
                        f"{token_option} or {TOKEN_ENV}, so only those who have it can read the pages")
    try:
        return listening(host, port), token
    except OSError as err:
        raise UserError(f"{option} {addr}: cannot listen: {err.strerror or err}") from err


@click.command()
@repo_option
@click.option("--addr", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="Where to listen; an address other than loopback needs a token.")
@click.option("--token", metavar="T", default=None,
              help=f"Require this token on every request (env {TOKEN_ENV}); needed off loopback.")
@click.pass_context
def ui(ctx: click.Context, repo: Path, addr: str, token: str | None) -> int:
    """Serve read-only web pages of the rules and the store: overview, image policies,
    repositories and automations, Kustomizations, live events, lead time, SQL.

    The rules are read once, at start. Open the address with `?token=T` once when a token is
    required (or send `Authorization: Bearer T`).

    \b
    Example:
      gitward --state state.db.example ui --repo examples/homelab
    """
    from engine.ui.app import serve

    listener, token = ui_listener(addr, token)
    loaded = load(repo)
    store = open_for_reading(ctx)
    shown = f"http://{addr}/"
    click.echo(f"gitward ui: serving {shown} (read-only; Ctrl-C stops)", err=True)
    try:
        serve(loaded, store, listener, token)
    finally:
        if store is not None:
            store.close()
    return 0
