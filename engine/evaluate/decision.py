"""From recorded facts to a policy decision, with the scan-completeness guard in front.

Flux once downgraded a production image after a partial registry listing. gitward evaluates a
policy only on a scan it can trust: one that succeeded, listed tags, kept at least half of the
tags the previous scan listed, and still lists the tag git deploys (once the ledger has seen
it). Otherwise the decision is a recorded refusal that keeps the previous selection and says
why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from engine import __version__

from engine.evaluate.policy import Evaluation, PolicyMemo, evaluate_policy
from engine.model import (
    REFUSED,
    Decision,
    GateDecision,
    ImagePolicy,
    ImageRepository,
    ImageScan,
    RegistryTag,
    ScanStatus,
)
from engine.rules.ocitag import is_valid_tag

@dataclass(frozen=True)
class ScanFacts:
    """What the store knows of a repository: its latest scan and its tags' history."""

    scan: ImageScan | None
    tags: tuple[RegistryTag, ...]

    @property
    def present(self) -> tuple[str, ...]:
        """The tags a decision weighs: listed by the registry now, and valid OCI tags (one the
        grammar refuses is in the ledger as invalid, never a candidate)."""
        return tuple(t.tag for t in self.tags if t.gone_at is None and is_valid_tag(t.tag))

    @property
    def gone(self) -> frozenset[str]:
        """Tags the ledger saw once and the registry no longer lists."""
        return frozenset(t.tag for t in self.tags if t.gone_at is not None)

    @property
    def lost(self) -> tuple[str, ...]:
        """Tags the latest successful scan stopped listing."""
        if self.scan is None:
            return ()
        return tuple(t.tag for t in self.tags if t.gone_at == self.scan.finished_at)


def guard_scan(repository: str, facts: ScanFacts, deployed: str | None) -> str | None:
    """Why the latest scan cannot be trusted, or None when it can."""
    scan = facts.scan
    if scan is None:
        return f"ImageRepository {repository} has not been scanned yet"
    if scan.status is ScanStatus.FAILED:
        return f"the latest scan of {repository} failed: {scan.error}"
    present = facts.present
    if not present:
        return f"the latest scan of {repository} listed no tags"
    lost = facts.lost
    before = len(present) + len(lost)
    if len(lost) * 2 > before:
        return (f"the latest scan of {repository} lost {len(lost)} of the {before} tags the "
                "previous scan listed (more than half): a partial listing is not trusted")
    if deployed and deployed not in present and deployed in facts.gone:
        return (f"the latest scan of {repository} no longer lists {deployed}, the tag git "
                "deploys: a listing without it is not trusted")
    return None


def decision_inputs(policy: ImagePolicy, repository: ImageRepository | None, facts: ScanFacts, *,
                    previous: str | None, deployed: str | None) -> str:
    """A digest of everything `decide` reads but the clock: the policy's spec, the repository's
    exclusion list, the scan's outcome, every tag with its state (listed, gone, lost by this
    scan), the previous selection and the deployed tag, and this gitward's version (an upgrade
    may decide differently). Two decisions with the same inputs are the same decision, so a
    caller that finds the policy's latest row made from these inputs counts it again instead of
    deciding (engine/store/decisions.py `repeat_same_inputs`)."""
    scan = facts.scan
    finished = scan.finished_at if scan is not None else None
    head = repr((__version__, replace(policy, origin=None, ignored=()),
                 repository.exclusion_list if repository is not None else None,
                 (scan.status.value, scan.error) if scan is not None else None, previous, deployed))
    digest = hashlib.sha256(head.encode())
    # one line a tag: "+" listed, "-" gone, "!" lost by this scan (the guard's inputs)
    digest.update("\n".join(sorted(
        ("+" if t.gone_at is None else "!" if t.gone_at == finished else "-") + t.tag
        for t in facts.tags)).encode())
    return digest.hexdigest()


def decide(
    policy: ImagePolicy,
    repository: ImageRepository | None,
    facts: ScanFacts,
    *,
    previous: str | None,
    deployed: str | None,
    now: datetime,
    memo: PolicyMemo | None = None,
) -> tuple[Decision, Evaluation | None]:
    """The decision to record: an evaluation of the current tags, or a refusal.

    `memo` is the policy's, kept by a caller that decides it again and again (`PolicyMemos`).
    """
    repo_ref = policy.repository_key.ref
    scan_id = facts.scan.id if facts.scan else None
    refusal = guard_scan(repo_ref, facts, deployed)
    if refusal is not None:
        kept = f"; keeping {previous}" if previous else ""
        return Decision(
            policy=policy.key.ref,
            decided_at=now,
            previous_tag=previous,
            error=f"{REFUSED}{refusal}{kept}",
            scan_id=scan_id,
        ), None
    evaluation = evaluate_policy(policy, repository, facts.present, memo)
    counts = tuple(sorted((k, v) for k, v in evaluation.counts.items() if v))
    candidates = sum(1 for t in evaluation.tags if t.rank is not None)
    return Decision(
        policy=policy.key.ref,
        decided_at=now,
        selected_tag=evaluation.selected,
        previous_tag=previous,
        candidates=candidates,
        verdict_counts=counts,
        trace=evaluation.tags,
        error=evaluation.error,
        scan_id=scan_id,
    ), evaluation


class PolicyMemos:
    """One PolicyMemo per ImagePolicy, for a process that decides policies again and again
    (`gitward run`), so a rescan with k new tags costs policy work for k tags.

    Bounded: a policy's memo holds its current spec only (a changed spec starts afresh, the old
    one dropped), and `keep` drops the memos of policies no longer in the rules. One-shot
    commands keep none: they pass no memo.
    """

    def __init__(self) -> None:
        self._memos: dict[str, PolicyMemo] = {}

    def __len__(self) -> int:
        return len(self._memos)

    def of(self, policy: ImagePolicy) -> PolicyMemo:
        """The policy's memo (a new one the first time)."""
        memo = self._memos.get(policy.key.ref)
        if memo is None:
            memo = self._memos[policy.key.ref] = PolicyMemo(max_specs=1)
        return memo

    def keep(self, policies: Iterable[ImagePolicy]) -> None:
        """Drop the memos of every policy but `policies` (the rules now)."""
        wanted = {policy.key.ref for policy in policies}
        for ref in self._memos.keys() - wanted:
            del self._memos[ref]


def gated(gate: GateDecision, previous: str | None, now: datetime) -> Decision:
    """The decision row that records a gate holding an update back (visible in `explain`)."""
    return Decision(
        policy=gate.policy,
        decided_at=now,
        selected_tag=gate.proposed,
        previous_tag=previous,
        error=f"{gate.reason} ({gate.path}:{gate.line})",
        gate=gate.gate,
    )
