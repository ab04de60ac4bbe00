"""Sending alerts: a JSON body to webhooks, a plain-text message to ntfy topics.

A notification is best effort: every alert is tried once with a short timeout, and a failure is
returned as a `Delivery` for the caller to log, never raised, so a dead receiver cannot stop
the loop. Alert URLs often carry a token (in the userinfo or the path), so a delivery names its
receiver by scheme and host only, and error texts are scrubbed of the URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from urllib.parse import urlsplit

import httpx

from engine.model import Alert, AlertEvent, AlertKind, CommitAction, Gate, GateDecision, ObjectKey
from engine.redact import public_url, scrub

TIMEOUT = httpx.Timeout(5.0)
"""Per request: an alert that cannot be delivered in five seconds is logged as failed."""

_NTFY_TAGS = {AlertEvent.UPDATE: "package", AlertEvent.FAILURE: "warning"}
_NTFY_PRIORITY = {AlertEvent.UPDATE: "default", AlertEvent.FAILURE: "high"}


@dataclass(frozen=True)
class Event:
    """Something an alert may be sent on: its kind, the object, a title and a message."""

    kind: AlertEvent
    subject: ObjectKey
    title: str
    message: str
    at: datetime
    revision: str = ""
    details: tuple[dict[str, object], ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, object]:
        return {"event": self.kind.value, "kind": self.subject.kind, "namespace": self.subject.namespace,
                "name": self.subject.name, "title": self.title, "message": self.message,
                "revision": self.revision, "time": self.at.isoformat(), "changes": list(self.details)}


@dataclass(frozen=True)
class Delivery:
    """One alert's attempt: where it went (scheme and host only) and the error, if any."""

    alert: str
    receiver: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def update_event(action: CommitAction, commit: str, at: datetime) -> Event:
    """An image update pushed: each old -> new value, and the commit that carries them."""
    lines = [f"{c.old} -> {c.new} ({c.path}:{c.line}, policy {c.policy})" for c in action.files]
    message = "\n".join([*lines, f"commit {commit} pushed to {action.push_branch}"])
    title = f"gitward: image update pushed to {action.target}"
    automation = action.automations[0] if action.automations else action.source.ref
    namespace, _, name = automation.rpartition("/")
    key = ObjectKey("ImageUpdateAutomation", namespace, name)
    return Event(AlertEvent.UPDATE, key, title, message, at, commit,
                 tuple(c.to_json() for c in action.files))


def failure_event(key: ObjectKey, message: str, revision: str, at: datetime) -> Event:
    """A reconcile that failed, with its (already secret-free) message."""
    return Event(AlertEvent.FAILURE, key, f"gitward: {key.kind} {key.ref} failed",
                 scrub(message) or "reconcile failed", at, revision)


def held_event(gate: GateDecision, at: datetime) -> Event:
    """An update a gate holds until someone acts (a rollback, say): sent as a failure, since a
    policy asks for what gitward refuses to do; the gate's reason says what to do."""
    namespace, _, name = gate.policy.rpartition("/")
    what = "a rollback" if gate.gate is Gate.ROLLBACK else f"the {gate.gate.value} gate"
    title = f"gitward: ImagePolicy {gate.policy}: update held by {what}"
    message = (f"{gate.current} -> {gate.proposed} ({gate.path}:{gate.line}) held: "
               f"{gate.gate.value}: {gate.reason}")
    return Event(AlertEvent.FAILURE, ObjectKey("ImagePolicy", namespace, name), title, message, at,
                 gate.proposed, (gate.to_json(),))


def notify(alerts: Iterable[Alert], event: Event) -> list[Delivery]:
    """Send `event` to every alert that subscribes to its kind; one Delivery per alert tried."""
    chosen = [alert for alert in alerts if event.kind in alert.on]
    if not chosen:
        return []
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
        return [_send(client, alert, event) for alert in chosen]


def receiver(url: str) -> str:
    """`scheme://host[:port]` of a URL: what logs may show of an alert's destination."""
    parts = urlsplit(public_url(url))
    return f"{parts.scheme}://{parts.netloc}"


def _send(client: httpx.Client, alert: Alert, event: Event) -> Delivery:
    shown = receiver(alert.target)
    try:
        if alert.kind is AlertKind.NTFY:
            response = client.post(alert.target, content=event.message.encode("utf-8"),
                                   headers=_ntfy_headers(event))
        else:
            response = client.post(alert.target, json=event.to_json())
    except httpx.HTTPError as err:
        detail = scrub(str(err), (alert.target, alert.url)) or type(err).__name__
        return Delivery(alert.name, shown, f"{type(err).__name__}: {detail}")
    if response.status_code >= 300:
        return Delivery(alert.name, shown, f"HTTP {response.status_code}")
    return Delivery(alert.name, shown)


def _ntfy_headers(event: Event) -> dict[str, str]:
    """ntfy's publish headers; a non-ASCII title goes RFC 2047-encoded, which ntfy decodes."""
    return {"Title": _header_text(event.title), "Tags": _NTFY_TAGS[event.kind],
            "Priority": _NTFY_PRIORITY[event.kind], "Content-Type": "text/plain; charset=utf-8"}


def _header_text(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if one_line.isascii() else Header(one_line, "utf-8").encode()
