"""Recognising markers: comments that tie a value in a file to an image policy.

A marker dialect (engine/model.py `MarkerDialect`, defined in `*.rules`) says which files hold
markers and how a marker comment reads. Flux's rule, kept here: after the comment leader
characters are stripped, the comment text must be exactly one JSON object whose values are all
strings, with the dialect's key naming `NAMESPACE:NAME` or `NAMESPACE:NAME:tag|name|digest`.
Anything else is not a marker (text after the JSON, a number value, a slash in the name).
This module reads one marker comment; engine/evaluate/rewrite.py finds them in a file's real
parse, locates the values they govern and replaces them.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from enum import StrEnum

from engine.model import MarkerDialect


class MarkerPart(StrEnum):
    """Which part of the policy's latest image a marker writes."""

    IMAGE = ""  # name:tag[@digest]
    TAG = "tag"
    NAME = "name"
    DIGEST = "digest"


@dataclass(frozen=True)
class MarkerRef:
    """One marker comment found in a file (1-based line, column of the comment leader)."""

    path: str
    line: int
    column: int
    policy_namespace: str
    policy_name: str
    part: MarkerPart
    dialect: str

    @property
    def setter(self) -> str:
        base = f"{self.policy_namespace}:{self.policy_name}"
        return f"{base}:{self.part.value}" if self.part else base


def dialect_applies(dialect: MarkerDialect, path: str) -> bool:
    """Whether the dialect's file patterns match the file's name (case-sensitive, as Flux)."""
    name = path.rpartition("/")[2]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in dialect.files)


def parse_marker_comment(comment: str, dialect: MarkerDialect) -> tuple[str, str, MarkerPart] | None:
    """`# {"$imagepolicy": "ns:name:tag"}` -> ("ns", "name", TAG); None when not a marker."""
    leader = dialect.comment[:1] or "#"
    body = comment.lstrip(leader).strip()
    if not body.startswith("{"):
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # a value nested thousands deep is no string either
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    setter = data.get(dialect.json_key)
    if not isinstance(setter, str):
        return None
    pieces = setter.split(":")
    if len(pieces) == 2:
        part = MarkerPart.IMAGE
    elif len(pieces) == 3 and pieces[2] in ("tag", "name", "digest"):
        part = MarkerPart(pieces[2])
    else:
        return None
    namespace, name = pieces[0], pieces[1]
    if not namespace or not name or "/" in setter:
        return None
    return namespace, name, part


def comment_start(line: str, leader: str) -> int | None:
    """Index of the first comment leader outside quotes that starts a comment, or None.

    A YAML comment starts at a `#` at the line start or after white space; quotes are tracked
    so that `"a #b"` is not a comment.
    """
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'" and (i == 0 or line[i - 1] in " \t:-[{,"):
            quote = ch
            continue
        if line.startswith(leader, i) and (i == 0 or line[i - 1] in " \t"):
            return i
    return None
