"""Decision traces, stored once per distinct trace and mostly as changes from the one before.

A trace lists every tag of a repository with its verdict (~100 bytes a tag), and consecutive
traces of a policy differ in a few tags: a new tag, a tag gone, the ranks below a new winner
shifted by one. So a new trace is stored as its changes from the policy's previous trace
(`decision_traces.base`): the tags dropped, the lines that changed (without their rank), and
the ranked order as runs copied from the base plus the tags new to it. Ranks and the unranked
lines' order are implied: the trace holds ranked tags first by rank (1 = selected, verdict
`selected`; the others `lower`), then the rest in byte order of the tag
(engine/evaluate/policy.py). A trace whose changes would be large is stored whole, and so is
one every MAX_DEPTH steps, so a reader decodes at most that many changes. A whole trace in that
shape is stored as its changes from an empty trace (half the bytes of the array: no keys, no
ranks); one not in it, as the array of its lines.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Sequence

from sqlalchemy import JSON, String, text
from sqlalchemy.orm import Session

from engine.model import TagVerdict
from engine.store.queries import dialect_insert
from engine.store.schema import DecisionTraceRow

MAX_DEPTH = 64
"""Changes stacked on a whole trace before the next one is stored whole."""
_DECODED: dict[str, tuple[TagVerdict, ...]] = {}
"""Traces decoded lately, by digest: a digest names one trace for good, in any store, so the
next change of a policy is stored against its previous trace without decoding it again."""
_KEPT = 64

Line = tuple[str, str | None, str]
"""A tag's verdict, value and reason: its trace line without the tag and the rank."""


def trace_json(trace: Sequence[TagVerdict]) -> list[dict[str, object]]:
    return [step.to_json() for step in trace]


def trace_digest(trace: Sequence[TagVerdict]) -> str:
    """The trace's identity: SHA-256 of its JSON with sorted keys and no spaces.

    Each line's object is built with its keys already in sorted order (what `to_json` holds,
    sorted): the same text as sorting them, at half the cost of a decision's largest step."""
    text = json.dumps([{"rank": t.rank, "reason": t.reason, "tag": t.tag, "value": t.value,
                        "verdict": str(t.verdict)} for t in trace],
                      separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class _Shape:
    """A trace split as it is stored: the ranked tags in order, and every tag's line."""

    ranked: tuple[str, ...]
    lines: dict[str, Line]

    @staticmethod
    def unchecked(trace: Sequence[TagVerdict]) -> _Shape:
        """The trace's shape, for a trace known to be in the implied order (a change was
        stored against it, or it was decoded from a shape)."""
        return _Shape(tuple(t.tag for t in trace if t.rank is not None),
                      {t.tag: (t.verdict, t.value, t.reason) for t in trace})

    @staticmethod
    def of(trace: Sequence[TagVerdict]) -> _Shape | None:
        """The trace's shape, or None when its order is not the implied one."""
        shape = _Shape.unchecked(trace)
        return shape if len(shape.lines) == len(trace) and shape.trace() == tuple(trace) else None

    def trace(self) -> tuple[TagVerdict, ...]:
        ranked = set(self.ranked)
        rest = sorted((tag for tag in self.lines if tag not in ranked), key=lambda t: t.encode())
        out = [TagVerdict(tag, *self.lines[tag][:2], rank=i + 1, reason=self.lines[tag][2])
               for i, tag in enumerate(self.ranked)]
        out.extend(TagVerdict(tag, *self.lines[tag][:2], rank=None, reason=self.lines[tag][2])
                   for tag in rest)
        return tuple(out)


def _delta(base: _Shape, new: _Shape) -> dict[str, Any]:
    """`new` as changes from `base`: `drop` (tags), `put` ([tag, verdict, value, reason] lines
    new or changed), `ranked` (a list of `[start, end]` runs of the base's ranked tags and tag
    strings new there)."""
    ops: list[Any] = []
    matcher = SequenceMatcher(None, base.ranked, new.ranked, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            ops.append([i1, i2])
        else:
            ops.extend(new.ranked[j1:j2])
    return {
        "drop": sorted(tag for tag in base.lines if tag not in new.lines),
        "put": [[tag, *line] for tag, line in new.lines.items() if base.lines.get(tag) != line],
        "ranked": ops,
    }


def _apply(base: _Shape, delta: dict[str, Any]) -> _Shape:
    return _apply_in_place(_Shape(base.ranked, dict(base.lines)), delta)


def _apply_in_place(shape: _Shape, delta: dict[str, Any]) -> _Shape:
    """`delta` applied to `shape`, whose lines it changes (a decoder's own copy)."""
    lines = shape.lines
    for tag in delta["drop"]:
        del lines[tag]
    for tag, verdict, value, reason in delta["put"]:
        lines[tag] = (verdict, value, reason)
    ranked: list[str] = []
    for op in delta["ranked"]:
        if isinstance(op, list):
            ranked.extend(shape.ranked[op[0]:op[1]])
        else:
            ranked.append(op)
    return _Shape(tuple(ranked), lines)


def _size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def store_trace(session: Session, trace: Sequence[TagVerdict], *,
                after: str | None = None) -> str | None:
    """Keep a trace (None for an empty one) and return its digest; a trace already stored is
    not stored again. `after` is the digest of the policy's previous trace, which a new one is
    stored as changes from when that is small."""
    if not trace:
        return None
    digest = trace_digest(trace)
    if session.get(DecisionTraceRow, digest) is not None:
        return digest
    shape = _Shape.of(trace)
    whole: Any = trace_json(trace) if shape is None else _delta(_Shape((), {}), shape)
    row: dict[str, Any] = {"digest": digest, "base": None, "depth": 0, "tags": len(trace),
                           "trace": whole}
    base = session.get(DecisionTraceRow, after) if after is not None else None
    if shape is not None and base is not None and base.depth < MAX_DEPTH:
        base_shape = _Shape.of(load_trace(session, base.digest))
        if base_shape is not None:
            delta = _delta(base_shape, shape)
            if _size(delta) * 4 < _size(whole) and _apply(base_shape, delta).trace() == tuple(trace):
                row.update(base=base.digest, depth=base.depth + 1, trace=delta)
    # Another process may store the same trace meanwhile: either row is that trace.
    session.execute(dialect_insert(session, DecisionTraceRow).values(**row)
                    .on_conflict_do_nothing(index_elements=["digest"]))
    _remember(digest, tuple(trace))
    return digest


def load_trace(session: Session, digest: str) -> tuple[TagVerdict, ...]:
    """The trace a digest names, decoded from its whole ancestor and the changes since."""
    if (known := _DECODED.get(digest)) is not None:
        return known
    trace = _decode(session, digest)
    _remember(digest, trace)
    return trace


def forget_decoded() -> None:
    """Drop the traces kept decoded in this process: a new process starts without them."""
    _DECODED.clear()


def _remember(digest: str, trace: tuple[TagVerdict, ...]) -> None:
    if len(_DECODED) >= _KEPT:
        del _DECODED[next(iter(_DECODED))]
    _DECODED[digest] = trace


_CHAIN = text("""
WITH RECURSIVE chain(digest, base, trace, step) AS (
    SELECT digest, base, trace, 0 FROM decision_traces WHERE digest = :digest
    UNION ALL
    SELECT t.digest, t.base, t.trace, c.step + 1
    FROM decision_traces t JOIN chain c ON t.digest = c.base
)
SELECT digest, trace FROM chain ORDER BY step
""").columns(digest=String(), trace=JSON())
"""A trace and its bases back to a whole one, newest first, in one query."""


def load_verdicts(session: Session, digest: str) -> dict[str, tuple[int | None, str]]:
    """Each tag's rank and verdict in the trace a digest names: what a reader listing tags in
    the policy's order needs, decoded without making the trace's lines."""
    known = _DECODED.get(digest)
    shape = known if known is not None else _decode_shape(session, digest)
    if isinstance(shape, tuple):
        return {t.tag: (t.rank, t.verdict) for t in shape}
    ranks = {tag: rank for rank, tag in enumerate(shape.ranked, start=1)}
    return {tag: (ranks.get(tag), line[0]) for tag, line in shape.lines.items()}


def _decode(session: Session, digest: str) -> tuple[TagVerdict, ...]:
    shape = _decode_shape(session, digest)
    return shape if isinstance(shape, tuple) else shape.trace()


def _decode_shape(session: Session, digest: str) -> _Shape | tuple[TagVerdict, ...]:
    """The trace's shape from its whole ancestor and the changes since (a whole trace not in
    the implied order, stored as its lines, comes back as them)."""
    chain: list[Any] = []
    shape: _Shape | None = None
    for row in session.execute(_CHAIN, {"digest": digest}):
        if (known := _DECODED.get(row.digest)) is not None:
            shape = _Shape.unchecked(known)
            break
        chain.append(row.trace)
    if shape is None:
        if not chain:
            raise LookupError(f"no trace {digest} in decision_traces")
        first = chain.pop()
        if isinstance(first, list):
            whole = tuple(TagVerdict.from_json(step) for step in first)
            if not chain:
                return whole
            shape = _Shape.unchecked(whole)
        else:
            shape = _apply_in_place(_Shape((), {}), first)
    for delta in reversed(chain):
        shape = _apply_in_place(shape, delta)
    return shape
