"""The heartbeat of a running gitward: its leases renewed from a thread of their own.

Every lease a gitward holds for longer than a moment (the daemon's own, an object's, a branch's
while a commit is pushed) lives `LEASE_TTL` and is renewed every `HEARTBEAT`, so a process
killed with SIGKILL blocks the others for a minute at most, while a live one keeps what it holds
however long its work takes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from engine.clock import Clock
from engine.errors import GitwardError
from engine.reconcile.telemetry import LogLevel, RunLog
from engine.store.db import Store
from engine.store.leases import DAEMON_PREFIX, acquire_lease, hold_lease, release_lease, renew_lease

LEASE_TTL = timedelta(seconds=60)
"""How long a lease (an object's, a branch's, the daemon's own) outlives a gitward that died
holding it."""

HEARTBEAT = timedelta(seconds=15)
"""How often the heartbeat thread renews the leases this process holds."""

_log = logging.getLogger(__name__)


class _Renewal:
    """A thread renewing a set of leases every `HEARTBEAT` until stopped."""

    def __init__(self, store: Store, holder: str, clock: Clock, log: RunLog | None,
                 names: set[str]) -> None:
        self.store = store
        self.holder = holder
        self.clock = clock
        self.log = log
        self.held = names
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="gitward-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT.total_seconds()):
            self._renew()

    def _renew(self) -> None:
        with self.lock:
            names = sorted(self.held)
        for name in names:
            try:
                renewed = renew_lease(self.store, name, self.holder, LEASE_TTL, self.clock())
            except GitwardError as err:
                self._warn(f"lease not renewed: {err}", name)
                continue
            if not renewed:
                self._warn("lease lost: it expired and another gitward took it", name)

    def _warn(self, message: str, lease: str) -> None:
        if self.log is not None:
            self.log.write(LogLevel.WARNING, message, lease=lease)
        else:
            _log.warning("%s: %s", lease, message)


class Heartbeat:
    """Renews this process's leases from a thread of its own, so a long reconcile (a
    Kustomization waiting for health, say) keeps its object, and `gitward reconcile` sees the
    daemon alive, while leases of a process that died run out after `LEASE_TTL`."""

    def __init__(self, store: Store, holder: str, clock: Clock, log: RunLog) -> None:
        self.store = store
        self.holder = holder
        self.clock = clock
        self.daemon_lease = f"{DAEMON_PREFIX}{holder}"
        self._renewal = _Renewal(store, holder, clock, log, {self.daemon_lease})

    def __enter__(self) -> Heartbeat:
        if not acquire_lease(self.store, self.daemon_lease, self.holder, LEASE_TTL, self.clock()):
            raise GitwardError(f"lease {self.daemon_lease} is taken: is this holder name unique?")
        self._renewal.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._renewal.stop()
        release_lease(self.store, self.daemon_lease, self.holder)

    @contextmanager
    def holding(self, name: str) -> Iterator[None]:
        """Keep the lease `name` (taken by the caller) renewed for the block."""
        with self._renewal.lock:
            self._renewal.held.add(name)
        try:
            yield
        finally:
            with self._renewal.lock:
                self._renewal.held.discard(name)


@contextmanager
def hold_renewed(store: Store, name: str, holder: str, clock: Clock,
                 log: RunLog | None = None) -> Iterator[None]:
    """Hold the lease `name` for the block (`LeaseHeld` when another gitward has it), for
    `LEASE_TTL` renewed every `HEARTBEAT` from a thread of the block's own: a push that takes
    minutes keeps its branch, a killed pusher frees it within `LEASE_TTL`."""
    with hold_lease(store, name, holder, LEASE_TTL, clock()):
        renewal = _Renewal(store, holder, clock, log, {name})
        renewal.start()
        try:
            yield
        finally:
            renewal.stop()
