"""Whether a `gitward run` is alive and ready, as its `/healthz` and `/readyz` say.

Alive: the loop beat within the allowance it gave itself. Between objects it beats at least every
`POLL`; before a reconcile it allows that object's timeout plus `STALL`, so a Kustomization
waiting out a long health check is not taken for a hung process, and one stuck for good is
(the kubelet then restarts it). Ready: the store answers (one read of a lease row) and this
process holds its daemon lease (`daemon:<holder>`, engine/reconcile/heartbeat.py): not yet
during start-up, not after stopping, and not once another gitward took it over.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from engine.errors import GitwardError
from engine.reconcile.images import Clock
from engine.store.db import Store
from engine.store.leases import DAEMON_PREFIX, find_lease

STALL = timedelta(minutes=5)
"""How long past its own timeout a reconcile may run (or a wait between objects last) before
the process counts as hung."""

STARTUP = timedelta(minutes=10)
"""How long start-up (opening the store, reading the rules, reaching the cluster) may take
before the loop's first beat."""


@dataclass(frozen=True)
class Verdict:
    """A probe's answer: `ok`, and the one line saying why (the body of the HTTP answer)."""

    ok: bool
    reason: str


class Pulse:
    """The loop's beats: each one says by when the next must come (monotonic time)."""

    def __init__(self, startup: timedelta = STARTUP) -> None:
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + startup.total_seconds()
        self._doing = "starting"

    def beat(self, within: timedelta, doing: str) -> None:
        """The loop is alive and `doing` something that should end within `within` (+`STALL`)."""
        with self._lock:
            self._deadline = time.monotonic() + (within + STALL).total_seconds()
            self._doing = doing

    def alive(self) -> Verdict:
        with self._lock:
            late = time.monotonic() - self._deadline
            doing = self._doing
        if late > 0:
            return Verdict(False, f"the loop has not moved for {late:.0f}s past its allowance "
                                  f"(last: {doing})")
        return Verdict(True, f"ok: {doing}")


class Readiness:
    """Ready when the store answers and `holder` holds its daemon lease there, unexpired."""

    def __init__(self, store: Store, holder: str, clock: Clock) -> None:
        self.store = store
        self.lease = f"{DAEMON_PREFIX}{holder}"
        self.holder = holder
        self.clock = clock

    def ready(self) -> Verdict:
        try:
            lease = find_lease(self.store, self.lease)
        except GitwardError as err:
            return Verdict(False, f"the store does not answer: {err}")
        if lease is None:
            return Verdict(False, f"not holding lease {self.lease} (starting, or stopped)")
        if lease.holder != self.holder:
            return Verdict(False, f"lease {self.lease} is held by another gitward ({lease.holder})")
        if lease.expired(self.clock()):
            until = lease.expires_at.isoformat(timespec="seconds")
            return Verdict(False, f"lease {self.lease} expired at {until}: the heartbeat has not "
                                  "renewed it")
        return Verdict(True, f"ok: holding lease {self.lease}")
