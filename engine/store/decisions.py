"""Policy decisions: recorded once per change, read latest first, traces decoded on request.

A decision like the policy's latest one (same selection, candidate count, verdict counts, error
and trace, and the same previous tag or none but that selection) is not written again: the
latest row's `decided_at` and `scan_id` move to it and its `runs` counts it, so an interval that
changes nothing adds no row, while `since` keeps when that decision was first made. A gate
holding an update back is a row of its own (its `gate` says which) after the selection it
holds, so a held update writes the two in turn every interval: each is compared with the row
before the other one's when that one, about the same tag, is the latest, so a held interval adds
no row either. A row keeps the digest of the inputs it was last made from (`inputs_digest`):
`repeat_same_inputs` counts a decision from the same inputs without its being made at all.
Traces live in `decision_traces` (engine/store/traces.py). The readers here
return decisions without their trace (`trace` is empty): a reader that shows one asks
`decision_trace` for it, one that orders tags by it `decision_verdicts`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, undefer

from engine.model import Decision, Gate, TagVerdict
from engine.store.db import Store
from engine.store.queries import transaction
from engine.store.schema import ImageScanRow, PolicyDecisionRow
from engine.store.traces import load_trace, load_verdicts, store_trace, trace_digest

_Row = TypeVar("_Row")


def _decision(row: PolicyDecisionRow, trace: tuple[TagVerdict, ...] = ()) -> Decision:
    return Decision(
        policy=row.policy,
        decided_at=row.decided_at,
        selected_tag=row.selected_tag,
        previous_tag=row.previous_tag,
        candidates=row.candidates,
        verdict_counts=tuple(sorted((str(k), int(v)) for k, v in row.verdict_counts.items())),
        trace=trace,
        error=row.error,
        scan_id=row.scan_id,
        id=row.id,
        gate=Gate(row.gate) if row.gate is not None else None,
    )


def _newest_first(query: Select[_Row]) -> Select[_Row]:
    return query.order_by(PolicyDecisionRow.decided_at.desc(), PolicyDecisionRow.id.desc())


def _repeated_row(session: Session, decision: Decision) -> PolicyDecisionRow | None:
    """The row `decision` would repeat: the policy's latest, or, when that is a row of the other
    kind (gate, selection) about the same tag, the one before it."""
    query = select(PolicyDecisionRow).where(PolicyDecisionRow.policy == decision.policy)
    recent = session.scalars(_newest_first(query).limit(2)).all()
    if (len(recent) == 2 and (recent[0].gate is None) != (decision.gate is None)
            and recent[0].selected_tag == decision.selected_tag):
        return recent[1]
    return recent[0] if recent else None


def _latest_trace(session: Session, policy: str) -> str | None:
    """The digest of the policy's latest trace (a gate's record has none), which a new trace is
    stored as changes from."""
    query = select(PolicyDecisionRow.trace_digest).where(
        PolicyDecisionRow.policy == policy, PolicyDecisionRow.trace_digest.is_not(None))
    return session.scalars(_newest_first(query).limit(1)).first()


def record_decision(store: Store, decision: Decision, inputs: str | None = None) -> Decision:
    """Record a decision, or count it in the row it repeats (`_repeated_row`) when it is the
    same; returns it as recorded (its trace as given). `inputs`: the digest of what it was made
    from (`decision_inputs`), which the row keeps for `repeat_same_inputs`."""
    digest = trace_digest(decision.trace) if decision.trace else None
    counts = dict(sorted(decision.verdict_counts))
    with transaction(store) as session:
        # A write that changes nothing comes first: on SQLite it takes the write lock before
        # the reads, so a concurrent writer waits instead of failing to upgrade its lock.
        session.execute(update(PolicyDecisionRow).where(PolicyDecisionRow.id.is_(None))
                        .values(runs=PolicyDecisionRow.runs)
                        .execution_options(synchronize_session=False))
        latest = _repeated_row(session, decision)
        if (latest is not None and latest.decided_at <= decision.decided_at
                and _previous_agrees(latest, decision)
                and (latest.selected_tag, latest.candidates, latest.verdict_counts, latest.error,
                     latest.gate, latest.trace_digest)
                == (decision.selected_tag, decision.candidates, counts, decision.error,
                    decision.gate, digest)):
            latest.decided_at, latest.runs = decision.decided_at, latest.runs + 1
            latest.inputs_digest = inputs
            latest.scan_id = decision.scan_id if decision.scan_id is not None else latest.scan_id
            session.flush()
            return _decision(latest, decision.trace)
        stored = store_trace(session, decision.trace, after=_latest_trace(session, decision.policy))
        row = PolicyDecisionRow(
            policy=decision.policy,
            scan_id=decision.scan_id,
            selected_tag=decision.selected_tag,
            previous_tag=decision.previous_tag,
            candidates=decision.candidates,
            verdict_counts=counts,
            trace_digest=stored,
            error=decision.error,
            gate=decision.gate,
            decided_at=decision.decided_at,
            since=decision.decided_at,
            runs=1,
            inputs_digest=inputs,
        )
        session.add(row)
        session.flush()
        return _decision(row, decision.trace)


def repeat_same_inputs(store: Store, policy: str, inputs: str, *, at: datetime,
                       scan_id: int | None) -> Decision | None:
    """The policy's decision counted again at `at`, without being made, when the row a new one
    would repeat (`_repeated_row`) was made from the same `inputs`: same inputs, same decision.
    None when it was not (the caller decides and records as usual), so a row is still written
    whenever the inputs or the outcome change. Returned without its trace."""
    with transaction(store) as session:
        session.execute(update(PolicyDecisionRow).where(PolicyDecisionRow.id.is_(None))
                        .values(runs=PolicyDecisionRow.runs)
                        .execution_options(synchronize_session=False))
        query = (select(PolicyDecisionRow).where(PolicyDecisionRow.policy == policy)
                 .options(undefer(PolicyDecisionRow.inputs_digest)))
        recent = session.scalars(_newest_first(query).limit(2)).all()
        if not recent:
            return None
        row = recent[0]
        if row.gate is not None:  # a gate's record after the selection it holds: that selection
            if len(recent) < 2 or recent[1].selected_tag != row.selected_tag:
                return None
            row = recent[1]
        if row.inputs_digest != inputs or row.decided_at > at:
            return None
        row.decided_at, row.runs = at, row.runs + 1
        row.scan_id = scan_id if scan_id is not None else row.scan_id
        session.flush()
        return _decision(row)


def counted_again(store: Store, decision_id: int, at: datetime) -> None:
    """The recorded decision made again at `at` (a gate that still holds, its reason's words
    aside): its `decided_at` moves there and `runs` counts it; `since` stays."""
    with transaction(store) as session:
        session.execute(update(PolicyDecisionRow).where(PolicyDecisionRow.id == decision_id,
                                                        PolicyDecisionRow.decided_at <= at)
                        .values(decided_at=at, runs=PolicyDecisionRow.runs + 1)
                        .execution_options(synchronize_session=False))


def _previous_agrees(latest: PolicyDecisionRow, decision: Decision) -> bool:
    """The same previous tag, or the decision keeps the latest row's selection (its previous is
    that selection): the row that recorded the change keeps what it changed from."""
    return latest.previous_tag == decision.previous_tag or (
        decision.previous_tag is not None and decision.previous_tag == decision.selected_tag
        == latest.selected_tag)


def decision_trace(store: Store, decision: Decision) -> Decision:
    """The decision with its trace (the one it was recorded with)."""
    if decision.id is None:
        return decision
    with transaction(store, "read") as session:
        digest = session.scalars(select(PolicyDecisionRow.trace_digest)
                                 .where(PolicyDecisionRow.id == decision.id)).first()
        return replace(decision, trace=load_trace(session, digest) if digest else ())


def decision_verdicts(store: Store, decision: Decision) -> dict[str, tuple[int | None, str]]:
    """Each tag's rank and verdict in the decision's trace (a reader that lists tags in the
    policy's order shows no more of it)."""
    if decision.id is None:
        return {t.tag: (t.rank, t.verdict) for t in decision.trace}
    with transaction(store, "read") as session:
        digest = session.scalars(select(PolicyDecisionRow.trace_digest)
                                 .where(PolicyDecisionRow.id == decision.id)).first()
        return load_verdicts(session, digest) if digest else {}


def decision_by_id(store: Store, policy: str, decision_id: int) -> Decision | None:
    """The policy's decision with that id, without its trace; None when it has no such one."""
    query = select(PolicyDecisionRow).where(PolicyDecisionRow.id == decision_id,
                                            PolicyDecisionRow.policy == policy)
    with transaction(store, "read") as session:
        row = session.scalars(query).first()
        return _decision(row) if row is not None else None


def latest_decision(store: Store, policy: str) -> Decision | None:
    """The policy's most recent decision, whatever its outcome."""
    found = decisions(store, policy, limit=1)
    return found[0] if found else None


def latest_selection(store: Store, policy: str) -> Decision | None:
    """The policy's most recent decision that selected a tag (refusals and failures skipped)."""
    found = decisions(store, policy, limit=1, selected_only=True)
    return found[0] if found else None


def previous_selection(store: Store, policy: str, latest: str) -> str | None:
    """The tag the policy selected before it last changed to `latest` (None: it never had
    another); a gate's record is not a selection."""
    query = _newest_first(
        select(PolicyDecisionRow.selected_tag)
        .where(PolicyDecisionRow.policy == policy, PolicyDecisionRow.error.is_(None),
               PolicyDecisionRow.selected_tag.is_not(None),
               PolicyDecisionRow.selected_tag != latest)).limit(1)
    with transaction(store, "read") as session:
        return session.scalars(query).first()


def evaluated_by_policy(store: Store, repository: str, *, scan_rows: int = 200) -> dict[str, Decision]:
    """The latest evaluated decision (a tag selected, every tag's verdict in its trace) of each
    policy that decided on the repository's recent scans, by policy, without its trace."""
    query = (select(PolicyDecisionRow.id, PolicyDecisionRow.policy)
             .join(ImageScanRow, PolicyDecisionRow.scan_id == ImageScanRow.id)
             .where(ImageScanRow.repository == repository, PolicyDecisionRow.error.is_(None),
                    PolicyDecisionRow.selected_tag.is_not(None))
             .order_by(PolicyDecisionRow.decided_at.desc(), PolicyDecisionRow.id.desc())
             .limit(scan_rows))
    with transaction(store, "read") as session:
        latest: dict[str, int] = {}
        for decision_id, policy in session.execute(query):  # ids first: one row loaded per policy
            latest.setdefault(policy, decision_id)
        rows = session.scalars(select(PolicyDecisionRow)
                               .where(PolicyDecisionRow.id.in_(latest.values())))
        by_id = {row.id: _decision(row) for row in rows}
    return {policy: by_id[decision_id] for policy, decision_id in latest.items()}


def decisions(store: Store, policy: str, *, limit: int = 10,
              selected_only: bool = False) -> tuple[Decision, ...]:
    """The policy's decisions, newest first, without their traces."""
    query = select(PolicyDecisionRow).where(PolicyDecisionRow.policy == policy)
    if selected_only:
        query = query.where(PolicyDecisionRow.selected_tag.is_not(None))
    with transaction(store, "read") as session:
        return tuple(_decision(row) for row in session.scalars(_newest_first(query).limit(limit)))
