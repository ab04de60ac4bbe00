"""What `gitward run` tells the outside: one log line per event, and Prometheus metrics."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, TextIO

from engine.act.notify import Delivery
from engine.evaluate.schedule import Outcome
from engine.model import ObjectKey
from engine.reconcile.images import Clock

if TYPE_CHECKING:  # the metrics library is loaded by `--metrics-addr` only
    from prometheus_client import CollectorRegistry


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogLevel(IntEnum):
    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40


class RunLog:
    """One line per event, logfmt-like text or JSON, at or above `level`."""

    def __init__(self, stream: TextIO, fmt: LogFormat, level: LogLevel, clock: Clock) -> None:
        self.stream = stream
        self.fmt = fmt
        self.level = level
        self.clock = clock
        self._lock = threading.Lock()  # the heartbeat thread logs too: whole lines only

    def reconciled(self, key: ObjectKey, outcome: Outcome, revision: str, message: str,
                   seconds: float) -> None:
        level = LogLevel.ERROR if outcome is Outcome.FAILED else LogLevel.INFO
        self.write(level, message or "reconciled", kind=key.kind, object=key.ref,
                   revision=revision, outcome=outcome.value, duration=f"{seconds:.3f}s")

    def write(self, level: LogLevel, message: str, **fields: str) -> None:
        if level < self.level:
            return
        record = {"time": self.clock().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                  "level": level.name.lower(), **fields, "msg": message}
        if self.fmt is LogFormat.JSON:
            line = json.dumps(record, ensure_ascii=False)
        else:
            line = " ".join(f"{name}={_quoted(value)}" for name, value in record.items())
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _quoted(value: str) -> str:
    plain = value and not any(c.isspace() or c in '"=' for c in value)
    return value if plain else json.dumps(value, ensure_ascii=False)


class Metrics:
    """Prometheus metrics of the loop, in their own registry (served by `gitward run --metrics-addr`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry or CollectorRegistry()
        self.reconciles = Counter("gitward_reconciles", "Reconciles by kind, object and outcome.",
                                  ["kind", "object", "outcome"], registry=self.registry)
        self.duration = Histogram("gitward_reconcile_duration_seconds",
                                  "How long one reconcile took.", ["kind"], registry=self.registry,
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.last_success = Gauge("gitward_last_success_timestamp_seconds",
                                  "Unix time of the last successful reconcile of an object.",
                                  ["kind", "object"], registry=self.registry)
        self.notifications = Counter("gitward_notifications", "Alerts sent, by alert and outcome.",
                                     ["alert", "outcome"], registry=self.registry)

    def reconciled(self, key: ObjectKey, outcome: Outcome, seconds: float, at: datetime) -> None:
        self.reconciles.labels(key.kind, key.ref, outcome.value).inc()
        self.duration.labels(key.kind).observe(seconds)
        if outcome is Outcome.OK:
            self.last_success.labels(key.kind, key.ref).set(at.timestamp())

    def delivered(self, delivery: Delivery) -> None:
        self.notifications.labels(delivery.alert, "ok" if delivery.ok else "failed").inc()
