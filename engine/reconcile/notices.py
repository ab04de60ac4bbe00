"""What `gitward run` says once per change, not once per interval: lints, unknown policies and
the fields gitward reads and does not act on.

The same lint holds on every interval, and a registry can be down for hours; saying so each
time would bury everything else. For each (object, reason) the lines said last are those of the
object's latest event with that reason: a new event (and a log line for each new line) is
recorded only when the lines differ, and one info event when they are all gone. The store holds
that state, so a restarted daemon, or `gitward run --once` from cron, says nothing new either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.errors import Problem, Problems
from engine.model import ImagePolicy, ObjectKey, RuleSet
from engine.rules.check import lint_policies
from engine.store import queries
from engine.store.db import Store

LINTS = "Lints"
"""Event reason: the Flux-trap lints that apply to the object (engine/rules/check.py,
engine/evaluate/markerlint.py), one per line."""

UNKNOWN = "PoliciesUnknown"
"""Event reason: the policies the automation's markers need that gitward does not know."""

IGNORED = "FieldsIgnored"
"""Event reason: the fields of the object gitward reads and does not act on (a registry
`provider: aws`, ...), one per line, each saying what gitward does instead."""

CLEARED = {LINTS: "no lints any more", UNKNOWN: "every marked policy is known again",
           IGNORED: "gitward acts on every field of this object again"}
"""The info event's message when an object's lines of that reason are all gone."""


@dataclass(frozen=True)
class Said:
    """What `say_once` recorded: the lines not said before, or that they all cleared."""

    new: tuple[str, ...] = ()
    cleared: bool = False


def lint_line(problem: Problem) -> str:
    """`path:line:col: message`, one line (the hint is for `check` and `plan`)."""
    return f"{problem.pos}: {problem.message}" if problem.pos else problem.message


def policy_lints(policy: ImagePolicy) -> list[Problem]:
    """The lints of one policy alone (its ImageRepository's reconcile says them)."""
    found = Problems()
    lint_policies(RuleSet.of([policy]), found)
    return found.warnings


def say_once(store: Store, key: ObjectKey, reason: str, lines: Sequence[str], at: datetime) -> Said:
    """Record an event on `key` when `lines` differ from what its latest `reason` event said."""
    last = queries.latest_event(store, object_kind=key.kind, object_name=key.ref, reason=reason)
    before = (tuple(last.message.splitlines())
              if last is not None and last.severity is not queries.EventSeverity.INFO else ())
    current = tuple(dict.fromkeys(lines))
    if current == before:
        return Said()
    if current:
        severity, message = queries.EventSeverity.WARNING, "\n".join(current)
    else:
        severity, message = queries.EventSeverity.INFO, CLEARED[reason]
    queries.record_event(store, queries.Event(time=at, object_kind=key.kind, object_name=key.ref,
                                              severity=severity, reason=reason, message=message))
    return Said(tuple(line for line in current if line not in before), not current)
