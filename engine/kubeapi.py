"""The Kubernetes API's vocabulary shared by the cluster's readers (observe) and its writer (act).

A layer of its own between them and the pure evaluator: what both sides say to the API server
(the field manager, the request timeout) and how a refusal reads (ApiError, parsed from the
server's `Status` answer). It imports no client library, so it stays cheap to load.
"""

from __future__ import annotations

import json
import re

from engine.errors import RetryableError
from engine.evaluate.health import list_at as _list, mapping_at as _sub

FIELD_MANAGER = "gitward"
"""The field manager of every server-side apply, real or dry-run."""

REQUEST_TIMEOUT = 30.0
"""Seconds one API request may take before it counts as failed."""


class ApiError(RetryableError):
    """A request about one object failed: the server refused it, or (status 0) never answered.

    `fields` are the paths the server named; `immutable` says a field that cannot change did.
    It is temporary when the answer can heal on retry (no answer, a conflict, throttling, a
    5xx) and permanent for the rest of the 4xx.
    """

    def __init__(self, message: str, *, status: int, fields: tuple[str, ...] = (),
                 immutable: bool = False) -> None:
        super().__init__(message, permanent=400 <= status < 500 and status not in (409, 429))
        self.status = status
        self.fields = fields
        self.immutable = immutable


_IMMUTABLE = re.compile(r"is immutable|immutable field|field is immutable", re.IGNORECASE)


def api_error(status: int, body: str | bytes | None, subject: str, *, secret: bool = False) -> ApiError:
    """An API error from the server's `Status` answer, naming `subject` and the fields at fault.

    For a Secret only the field paths are kept: a server message may quote the value.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    details = _sub(data, "details")
    causes = [c for c in _list(details, "causes") if isinstance(c, dict)]
    fields = tuple(dict.fromkeys(str(c["field"]) for c in causes if c.get("field")))
    message = str(data.get("message") or text.strip() or f"HTTP {status}")
    immutable = bool(_IMMUTABLE.search(message)) or any(
        _IMMUTABLE.search(str(c.get("message", ""))) for c in causes)
    if immutable:
        what = ", ".join(fields) or "a field"
        plural = "are" if len(fields) > 1 else "is"
        shown = (f"{what} {plural} immutable and the new value differs; "
                 "set force: true on the Kustomization to recreate the object")
        if not secret:
            shown += f" (server: {message})"
    elif secret:
        reason = f", {data['reason']}" if data.get("reason") else ""
        shown = f"refused (HTTP {status}{reason})" + (f": {', '.join(fields)}" if fields else "")
    else:
        shown = message
    return ApiError(f"{subject}: {shown}", status=status, fields=fields, immutable=immutable)

