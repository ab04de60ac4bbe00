"""Flux fields gitward does not model, carried verbatim (`model.FluxField`).

A reader keeps such a field as a path and its value as JSON; the Flux writer puts it back at
the same place, and the DSL prints it as a `flux` field that reads back to the same path and
value, so a round trip Flux -> DSL -> Flux loses nothing. A path is `key(.key|[index])*`:
`spec.decryption`, `metadata.labels`, `spec.dependsOn[0].readyExpr`, `apiVersion`.
"""

from __future__ import annotations

import json
import re

from engine.errors import SourcePos
from engine.model import FluxField

PATH = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*|\[[0-9]+\])*")
_STEP = re.compile(r"\.?([A-Za-z][A-Za-z0-9]*)|\[([0-9]+)\]")

Step = str | int
"""A key of a mapping, or an index into a list."""


def steps(path: str) -> list[Step] | None:
    """The keys and indexes of a path, or None when it is not one."""
    if not PATH.fullmatch(path):
        return None
    return [int(index) if index else key for key, index in _STEP.findall(path)]


def json_text(data: object) -> str:
    """The canonical JSON of a value (keys sorted), so equal values have equal text."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def carried(path: str, data: object, origin: SourcePos | None = None) -> FluxField:
    return FluxField(path, json_text(data), origin)


def value_of(field: FluxField) -> object:
    return json.loads(field.value)


def under(path: str, other: str) -> bool:
    """Whether `path` is `other` or inside it (`spec.verify.provider` is under `spec.verify`)."""
    return path == other or path.startswith((other + ".", other + "["))


def place(obj: dict[str, object], field: FluxField) -> bool:
    """Put a carried field into a written object: missing mappings on the way are created, a
    mapping already there takes the carried keys beside its own (metadata.annotations holds
    gitward's and the carried ones). False when the path leads through a list item or a
    value the object does not have."""
    path = steps(field.path)
    if not path or not isinstance(path[-1], str):
        return False
    parent: object = obj
    for step, following in zip(path, path[1:]):
        if isinstance(step, int):
            if not isinstance(parent, list) or step >= len(parent):
                return False
            parent = parent[step]
            continue
        if not isinstance(parent, dict):
            return False
        if parent.get(step) is None:
            if isinstance(following, int):
                return False
            parent[step] = {}
        parent = parent[step]
    if not isinstance(parent, dict):
        return False
    key, value = path[-1], value_of(field)
    existing = parent.get(key)
    if isinstance(existing, dict) and isinstance(value, dict):
        value = dict(sorted({**value, **existing}.items()))
    parent[key] = value
    ordered = sorted(parent.items())
    parent.clear()
    parent.update(ordered)
    return True
