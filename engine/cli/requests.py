"""`gitward reconcile` against a running `gitward run`: ask it through the store and wait.

Like `flux reconcile`, which annotates an object and waits for its controller, the request goes
to the daemon that owns the work (its clones, its cluster credentials, its leases), which may
run on another machine sharing a PostgreSQL store. Without a daemon, `gitward reconcile` acts in
its own process. A daemon that dies meanwhile (its `daemon:` lease released, or expired a
minute after a SIGKILL) is noticed while waiting: the wait ends at once with `DaemonGone` rather
than at `--timeout`.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Sequence
from datetime import timedelta

import click

from engine.clock import utcnow
from engine.errors import GitwardError
from engine.model import ObjectKey
from engine.store.db import Store
from engine.store.leases import DAEMON_PREFIX, running_daemons
from engine.store.requests import ReconcileRequest, get_request, request_reconcile

POLL_SECONDS = 0.5


class NoAnswer(GitwardError):
    """The daemon did not answer within the timeout (exit 1); the request stays queued."""


class DaemonGone(NoAnswer):
    """Every `gitward run` serving the store stopped before answering (exit 1): the request stays
    queued for the next daemon, and nothing is done here: the caller decides whether to
    reconcile directly (`--direct`), since the dead daemon may have been half-way through it."""


def serving_daemons(store: Store) -> list[str]:
    """The holders of the `gitward run` processes serving `store` now."""
    return [lease.holder for lease in running_daemons(store, utcnow())]


def _requester() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def ask(store: Store, keys: Sequence[ObjectKey], daemons: Sequence[str],
        timeout: timedelta) -> bool:
    """Request each of `keys` in turn, waiting for each answer; True when every one succeeded."""
    ok = True
    served_by = ", ".join(d.removeprefix(DAEMON_PREFIX) for d in daemons)
    for key in keys:
        name = f"{key.kind} {key.ref}"
        request = request_reconcile(store, key, _requester(), utcnow())
        click.echo(f"► asking gitward run ({served_by}) to reconcile {name}")
        click.echo(f"◎ waiting for {name} reconciliation")
        answer = _wait(store, request, timeout)
        if answer.outcome == "ok":
            revision = f" at {answer.revision}" if answer.revision else ""
            click.echo(f"✔ {name} reconciled{revision}: {answer.message or 'ok'}")
        else:
            click.echo(f"✗ {name}: {answer.message or 'failed'}", err=True)
            ok = False
    return ok


def _wait(store: Store, request: ReconcileRequest, timeout: timedelta) -> ReconcileRequest:
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        found = get_request(store, request.id)
        if found is not None and found.finished_at is not None:
            return found
        if not serving_daemons(store):
            raise DaemonGone(f"gitward run stopped before answering (no daemon holds a lease on "
                             f"the store any more): request #{request.id} stays queued for the "
                             f"next gitward run; `gitward reconcile --direct` reconciles "
                             f"{request.key.kind} {request.key.ref} here")
        if time.monotonic() >= deadline:
            raise NoAnswer(f"no answer from gitward run within {_shown(timeout)}: request "
                           f"#{request.id} stays queued and is answered after the next reconcile "
                           f"of {request.key.kind} {request.key.ref}")
        time.sleep(POLL_SECONDS)


def _shown(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"
