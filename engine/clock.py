"""The one clock: every time gitward records (a scan, a decision, an action, an event, a lease)
is read from a `Clock`, `utcnow` unless a caller injects its own (tests, the simulated daemon of
bench/). The pure core reads none: it is given `now`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (the store refuses naive ones)."""
    return datetime.now(UTC)
