"""`gitward events` and `gitward logs`: the `events` table, as a table, JSON lines or log lines.

Both read the store only. `events -w` follows the table by polling for higher ids every second,
so it sees rows any gitward process writes, on SQLite and PostgreSQL alike. JSON output is one
object per line, so a followed stream and a finished one parse the same way.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import click

from engine.cli.kinds import KINDS
from engine.cli.output import table
from engine.cli.state import open_for_reading
from engine.clock import utcnow
from engine.errors import UserError, did_you_mean
from engine.rules.duration import DurationError, parse_age
from engine.store.db import Store
from engine.store.queries import Event, events_after

POLL_SECONDS = 1.0
FLUX_KINDS = tuple(kind.flux_kind for kind in KINDS)


@dataclass(frozen=True)
class EventFilter:
    """Which events to show: one object's (`--for`), from a point in time on (`--since`)."""

    object_kind: str | None = None
    object_name: str | None = None
    since: datetime | None = None


def parse_for(value: str, namespace: str) -> tuple[str, str]:
    """`Kind/namespace/name` or `Kind/name` (in `namespace`) -> (Flux kind, `namespace/name`)."""
    kind, _, ref = value.partition("/")
    by_lower = {k.lower(): k for k in FLUX_KINDS}
    if kind.lower() not in by_lower:
        raise UserError(f"--for {value}: unknown kind {kind!r}{did_you_mean(kind, FLUX_KINDS)}; "
                        f"expected one of {', '.join(FLUX_KINDS)}")
    parts = ref.split("/")
    if not ref or len(parts) > 2 or not all(parts):
        raise UserError(f"--for {value}: expected KIND/NAMESPACE/NAME or KIND/NAME")
    name = ref if len(parts) == 2 else f"{namespace}/{ref}"
    return by_lower[kind.lower()], name


def parse_since(value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        return now - parse_age(value)
    except DurationError as err:
        raise UserError(f"--since: {err}") from None


def stamp(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, as `kubectl` and Flux print times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(event: Event) -> dict[str, object]:
    return {"id": event.id, "time": event.time.astimezone(UTC).isoformat(),
            "object_kind": event.object_kind, "object_name": event.object_name,
            "severity": event.severity.value, "reason": event.reason, "message": event.message}


def log_line(event: Event) -> str:
    """`time level object reason: message`, the object as `Kind/namespace/name`; the further
    lines of a message (an apply lists every object it changed) are indented, so every line at
    column 0 starts an event."""
    message = event.message.replace("\n", "\n  ")
    return (f"{stamp(event.time)} {event.severity.value} {event.object_kind}/{event.object_name} "
            f"{event.reason}: {message}")


def _read(store: Store, wanted: EventFilter, after_id: int = 0) -> tuple[Event, ...]:
    return events_after(store, after_id, object_kind=wanted.object_kind,
                        object_name=wanted.object_name, since=wanted.since)


def _print_table(events: Iterable[Event], *, header: bool) -> None:
    table(["TIME", "SEVERITY", "OBJECT", "REASON", "MESSAGE"],
          [[stamp(e.time), e.severity.value, f"{e.object_kind}/{e.object_name}", e.reason,
            e.message] for e in events], header=header)


def _emit(events: tuple[Event, ...], fmt: str, *, header: bool) -> None:
    if fmt == "json":
        for event in events:
            sys.stdout.write(json.dumps(to_json(event)) + "\n")
    elif fmt == "log":
        for event in events:
            sys.stdout.write(log_line(event) + "\n")
    elif events or header:
        _print_table(events, header=header)
    sys.stdout.flush()


def _show(store: Store | None, wanted: EventFilter, fmt: str, follow: bool) -> None:
    if store is None:
        if follow:
            raise UserError("no state store yet: nothing to follow (run a gitward command first)")
        if fmt == "table":
            click.echo("no events", err=True)
        return
    with store:
        found = _read(store, wanted)
        if fmt == "table" and not found and not follow:
            click.echo("no events", err=True)
            return
        _emit(found, fmt, header=True)
        last = max((e.id or 0 for e in found), default=0)
        while follow:
            time.sleep(POLL_SECONDS)
            fresh = _read(store, wanted, last)
            if fresh:
                _emit(fresh, fmt, header=False)
                last = max(last, *(e.id or 0 for e in fresh))


_since_option = click.option("--since", metavar="DURATION",
                             help="Only events this recent (30s, 5m, 1h30m).")


@click.command()
@click.option("--for", "target", metavar="KIND/NS/NAME",
              help="Only one object's events, e.g. Kustomization/flux-system/apps.")
@click.option("-n", "--namespace", default="flux-system", show_default=True,
              help="The namespace of a --for KIND/NAME without one.")
@_since_option
@click.option("-w", "--watch", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="A table for people, or one JSON object per line.")
@click.pass_context
def events(ctx: click.Context, target: str | None, namespace: str, since: str | None, watch: bool,
           fmt: str) -> int:
    """Show recorded events, newest last.

    \b
    Example:
      gitward events --for ImageRepository/ledger/ledger --since 1h
      gitward events -w -o json
    """
    kind, name = parse_for(target, namespace) if target else (None, None)
    wanted = EventFilter(kind, name, parse_since(since, utcnow()))
    _show(open_for_reading(ctx), wanted, fmt, watch)
    return 0


@click.command()
@_since_option
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Log lines, or one JSON object per line.")
@click.pass_context
def logs(ctx: click.Context, since: str | None, fmt: str) -> int:
    """Print recorded events as log lines: `time level object reason: message`.

    \b
    Example:
      gitward logs --since 24h
    """
    wanted = EventFilter(since=parse_since(since, utcnow()))
    _show(open_for_reading(ctx), wanted, "json" if fmt == "json" else "log", follow=False)
    return 0
