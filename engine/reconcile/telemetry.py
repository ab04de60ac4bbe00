"""What `gitward run` tells the outside: one log line per event, and Prometheus metrics."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, TextIO

from engine.act.notify import Delivery
from engine.clock import Clock
from engine.evaluate.schedule import Entry, Outcome
from engine.model import ObjectKey

if TYPE_CHECKING:  # the metrics library is loaded by `--metrics-addr` only
    from prometheus_client import CollectorRegistry, Gauge, Histogram


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


class ReadyStatus(StrEnum):
    """The `status` label of `gotk_reconcile_condition{type="Ready"}`, as Flux's controllers set it."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


READY_OF = {Outcome.OK: ReadyStatus.TRUE, Outcome.FAILED: ReadyStatus.FALSE}
"""A held reconcile (another gitward has the object) says nothing of its readiness."""

OBJECT = ["kind", "name", "namespace"]
"""Flux's labels for one object (gotk_reconcile_duration_seconds and the rest)."""


class Metrics:
    """Prometheus metrics of the loop, in their own registry (served by `gitward run --metrics-addr`).

    Per object, under Flux's names and labels where Flux has the series, so dashboards and
    alerts written for Flux's controllers chart gitward too (docs/flux.md says where they
    differ); the rest under `gitward_`. `gitward_reconciles_total` and
    `gitward_last_success_timestamp_seconds` keep their `object` label (`namespace/name`) for
    the dashboards written before `name` and `namespace` were added.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconciles = Counter("gitward_reconciles", "Reconciles by kind, object and outcome.",
                                  ["kind", "object", "name", "namespace", "outcome"], registry=r)
        self.duration = Histogram("gitward_reconcile_duration_seconds",
                                  "How long one reconcile took.", ["kind"], registry=r,
                                  buckets=_BUCKETS)
        self.object_duration = Histogram("gotk_reconcile_duration_seconds",
                                         "How long one reconcile of the object took.", OBJECT,
                                         registry=r, buckets=_BUCKETS)
        self.last_success = Gauge("gitward_last_success_timestamp_seconds",
                                  "Unix time of the last successful reconcile of an object.",
                                  ["kind", "object", "name", "namespace"], registry=r)
        self.last_reconcile = Gauge("gitward_last_reconcile_timestamp_seconds",
                                    "Unix time of the last reconcile of an object, whatever its "
                                    "outcome.", OBJECT, registry=r)
        self.condition = Gauge("gotk_reconcile_condition",
                               "1 on the object's Ready status (True, False, Unknown), 0 on the "
                               "others.", [*OBJECT, "type", "status"], registry=r)
        self.suspend = Gauge("gotk_suspend_status", "1 while the object is suspended.", OBJECT,
                             registry=r)
        self.interval = Gauge("gitward_reconcile_interval_seconds",
                              "The object's interval: how often it is reconciled.", OBJECT,
                              registry=r)
        self.tags = Gauge("gitward_image_repository_tags",
                          "Tags the last successful scan of the image repository found.",
                          [*OBJECT, "image"], registry=r)
        self.registry_requests = Counter("gitward_registry_requests",
                                         "Registry and token-service answers by host and HTTP "
                                         "status code.", ["host", "code"], registry=r)
        self.rate_limited = Counter("gitward_registry_rate_limited",
                                    "Registry answers 429 Too Many Requests, by host.", ["host"],
                                    registry=r)
        self.notifications = Counter("gitward_notifications", "Alerts sent, by alert and outcome.",
                                     ["alert", "outcome"], registry=r)
        self.loop_alive = Gauge("gitward_loop_alive", "1 while /healthz answers 200: the loop "
                                "beat within its allowance.", registry=r)
        self.daemon_ready = Gauge("gitward_daemon_ready", "1 while /readyz answers 200: the store "
                                  "answers and this process holds its lease.", registry=r)
        self._scheduled: dict[ObjectKey, float] = {}
        self._suspended: frozenset[ObjectKey] = frozenset()
        self._images: dict[ObjectKey, str] = {}

    def probing(self, alive: Callable[[], bool], ready: Callable[[], bool]) -> None:
        """Read `gitward_loop_alive` and `gitward_daemon_ready` from the probes at each scrape."""
        self.loop_alive.set_function(lambda: 1.0 if alive() else 0.0)
        self.daemon_ready.set_function(lambda: 1.0 if ready() else 0.0)

    def reconciled(self, key: ObjectKey, outcome: Outcome, seconds: float, at: datetime) -> None:
        labels = _labels(key)
        self.reconciles.labels(key.kind, key.ref, key.name, key.namespace, outcome.value).inc()
        self.duration.labels(key.kind).observe(seconds)
        self.object_duration.labels(*labels).observe(seconds)
        if outcome is Outcome.HELD:
            return
        self.last_reconcile.labels(*labels).set(at.timestamp())
        if outcome is Outcome.OK:
            self.last_success.labels(key.kind, key.ref, key.name, key.namespace).set(at.timestamp())
        self._ready(key, READY_OF.get(outcome, ReadyStatus.UNKNOWN))

    def scheduled(self, entries: Sequence[Entry]) -> None:
        """The objects the loop now reconciles: each one's interval, Ready Unknown until its
        first reconcile; the series of objects gone from the rules are dropped."""
        now = {entry.key: entry.interval.total_seconds() for entry in entries}
        for key in self._scheduled.keys() - now.keys():
            self._forget(key)
        for key, seconds in now.items():
            self.interval.labels(*_labels(key)).set(seconds)
            if key not in self._scheduled:
                self._ready(key, ReadyStatus.UNKNOWN)
                self.suspend.labels(*_labels(key)).set(1 if key in self._suspended else 0)
        self._scheduled = now

    def suspended(self, keys: frozenset[ObjectKey]) -> None:
        """The objects suspended now (the loop asks every `POLL`; only changes are set)."""
        if keys == self._suspended:
            return
        for key in self._suspended ^ keys:
            if key in self._scheduled:
                self.suspend.labels(*_labels(key)).set(1 if key in keys else 0)
        self._suspended = keys

    def scanned(self, key: ObjectKey, image: str, tag_count: int) -> None:
        """A successful scan of the image repository `key` found `tag_count` tags."""
        previous = self._images.get(key)
        if previous is not None and previous != image:
            self.tags.remove(*_labels(key), previous)
        self._images[key] = image
        self.tags.labels(*_labels(key), image).set(tag_count)

    def registry_answered(self, host: str, status: int) -> None:
        """One HTTP answer from a registry or its token service (engine/observe/httpclient.py)."""
        self.registry_requests.labels(host, str(status)).inc()
        if status == 429:
            self.rate_limited.labels(host).inc()

    def delivered(self, delivery: Delivery) -> None:
        self.notifications.labels(delivery.alert, "ok" if delivery.ok else "failed").inc()

    def _ready(self, key: ObjectKey, status: ReadyStatus) -> None:
        for each in ReadyStatus:
            self.condition.labels(*_labels(key), "Ready", each.value).set(1 if each is status else 0)

    def _forget(self, key: ObjectKey) -> None:
        labels = _labels(key)
        for metric in (self.interval, self.suspend, self.last_reconcile, self.object_duration):
            _remove(metric, labels)
        _remove(self.last_success, (key.kind, key.ref, key.name, key.namespace))
        for each in ReadyStatus:
            _remove(self.condition, (*labels, "Ready", each.value))
        image = self._images.pop(key, None)
        if image is not None:
            _remove(self.tags, (*labels, image))


_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def _labels(key: ObjectKey) -> tuple[str, str, str]:
    return key.kind, key.name, key.namespace


def _remove(metric: Gauge | Histogram, labels: tuple[str, ...]) -> None:
    """Drop one series; one never set is no error, whichever prometheus_client is installed."""
    try:
        metric.remove(*labels)
    except KeyError:
        pass
