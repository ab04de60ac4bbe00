"""The heartbeat of a running `gitward run`: its leases renewed from a thread of their own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from engine.errors import GitwardError
from engine.reconcile.images import Clock
from engine.reconcile.telemetry import LogLevel, RunLog
from engine.store.db import Store
from engine.store.leases import DAEMON_PREFIX, acquire_lease, release_lease, renew_lease

LEASE_TTL = timedelta(seconds=60)
"""How long a lease (an object's, the daemon's own) outlives a gitward that died holding it."""

HEARTBEAT = timedelta(seconds=15)
"""How often the heartbeat thread renews the leases this process holds."""


class Heartbeat:
    """Renews this process's leases from a thread of its own, so a long reconcile (a
    Kustomization waiting for health, say) keeps its object, and `gitward reconcile` sees the
    daemon alive, while leases of a process that died run out after `LEASE_TTL`."""

    def __init__(self, store: Store, holder: str, clock: Clock, log: RunLog) -> None:
        self.store = store
        self.holder = holder
        self.clock = clock
        self.log = log
        self.daemon_lease = f"{DAEMON_PREFIX}{holder}"
        self._held = {self.daemon_lease}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="gitward-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        if not acquire_lease(self.store, self.daemon_lease, self.holder, LEASE_TTL, self.clock()):
            raise GitwardError(f"lease {self.daemon_lease} is taken: is this holder name unique?")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        release_lease(self.store, self.daemon_lease, self.holder)

    @contextmanager
    def holding(self, name: str) -> Iterator[None]:
        """Keep the lease `name` (taken by the caller) renewed for the block."""
        with self._lock:
            self._held.add(name)
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(name)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT.total_seconds()):
            with self._lock:
                names = sorted(self._held)
            for name in names:
                try:
                    renewed = renew_lease(self.store, name, self.holder, LEASE_TTL, self.clock())
                except GitwardError as err:
                    self.log.write(LogLevel.WARNING, f"lease not renewed: {err}", lease=name)
                    continue
                if not renewed:
                    self.log.write(LogLevel.WARNING, "lease lost: it expired and another gitward "
                                   "took it", lease=name)
