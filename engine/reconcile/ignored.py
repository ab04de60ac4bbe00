"""What `gitward run` says of the fields it reads and does not act on: once per change.

An object's `ignored` warnings (a registry `provider: aws`, a Kustomization's `decryption`, ...)
hold on every interval; saying them each time would bury everything else. The lines said last
are those of the object's latest `FieldsIgnored` event: a new warning event (and a log line per
new line) is recorded only when the lines differ, and one info event when they are all gone.
The store holds that state, so a restarted daemon says nothing it said before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.errors import Problem
from engine.model import ObjectKey
from engine.store import queries
from engine.store.db import Store

IGNORED_FIELDS = "FieldsIgnored"
"""Event reason: the fields of the object gitward reads and does not act on, one per line,
each saying what gitward does instead."""
CLEARED = "gitward acts on every field of this object again"


@dataclass(frozen=True)
class Said:
    """What `say_ignored` recorded: the lines not said before, or that they all cleared."""

    new: tuple[str, ...] = ()
    cleared: bool = False


def line_of(problem: Problem) -> str:
    """`path:line:col: message`: where the field is written, and what gitward does instead."""
    return f"{problem.pos}: {problem.message}" if problem.pos else problem.message


def say_ignored(store: Store, key: ObjectKey, ignored: tuple[Problem, ...], at: datetime) -> Said:
    """Record an event on `key` when its ignored fields differ from what it said last."""
    last = queries.latest_event(store, object_kind=key.kind, object_name=key.ref, reason=IGNORED_FIELDS)
    before = (tuple(last.message.splitlines())
              if last is not None and last.severity is queries.EventSeverity.WARNING else ())
    current = tuple(dict.fromkeys(line_of(p) for p in ignored))
    if current == before:
        return Said()
    if current:
        severity, message = queries.EventSeverity.WARNING, "\n".join(current)
    else:
        severity, message = queries.EventSeverity.INFO, CLEARED
    queries.record_event(store, queries.Event(time=at, object_kind=key.kind, object_name=key.ref,
                                              severity=severity, reason=IGNORED_FIELDS, message=message))
    return Said(tuple(line for line in current if line not in before), not current)
