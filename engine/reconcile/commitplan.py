"""One plan, tag -> file -> cluster: the apply actions each planned commit leads to.

For every commit action of a checkout's plan, the checkout is copied (without `.git`) with the
commit's files written, and each Kustomization rendered from this checkout is rendered before
and after. A Kustomization whose rendering the commit changes (a file under its path, or one
its kustomizations reach) gets the ApplyPlan of its post-commit rendering against the inventory
the store recorded (`plan_recorded`: by identity and checksum, offline). Nothing is written to
the checkout, the store or a cluster.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import GitwardError
from engine.evaluate.apply import checksum
from engine.evaluate.applyplan import ApplyPlan, plan_recorded
from engine.model import CommitAction, Kustomization, Manifest, ObjectKey, RuleSet
from engine.reconcile.build import build_kustomization, checkout_source
from engine.reconcile.repo import LoadedCluster
from engine.rules.check import source_key
from engine.reconcile.updates import RepoPlan
from engine.store.db import Store
from engine.store.inventory import list_inventory


@dataclass(frozen=True)
class CommitApply:
    """The apply plans of the Kustomizations one commit action changes, and the ones that failed
    to render after it (their error)."""

    commit: str
    plans: tuple[ApplyPlan, ...] = ()
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"commit": self.commit, "plans": [p.to_json() for p in self.plans],
                "errors": list(self.errors)}


def commit_applies(root: Path, checkout: LoadedCluster, planned: RepoPlan,
                   store: Store | None) -> tuple[CommitApply, ...]:
    """Each commit action's apply plans, in the order of `planned`'s actions."""
    actions = planned.plan.actions
    if not actions:
        return ()
    rules = checkout.rules
    before: dict[ObjectKey, frozenset[tuple[str, str]] | None] = {}
    out: list[CommitApply] = []
    for action in actions:
        kustomizations = [k for k in checkout.buildable() if source_key(k) == action.source]
        with tempfile.TemporaryDirectory(prefix="gitward-plan-") as tmp:
            after_root = Path(tmp) / "checkout"
            shutil.copytree(root, after_root, ignore=shutil.ignore_patterns(".git"), symlinks=True)
            for rel, text in planned.texts[action.target].items():
                (after_root / rel).write_bytes(text.encode("utf-8", "surrogateescape"))
            out.append(_commit_apply(root, after_root, rules, action, kustomizations, before, store))
    return tuple(out)


def _commit_apply(root: Path, after_root: Path, rules: RuleSet, action: CommitAction,
                  kustomizations: Sequence[Kustomization],
                  before: dict[ObjectKey, frozenset[tuple[str, str]] | None],
                  store: Store | None) -> CommitApply:
    plans: list[ApplyPlan] = []
    errors: list[str] = []
    for ks in kustomizations:
        if ks.key not in before:
            try:
                before[ks.key] = _identity(_render(root, rules, ks))
            except GitwardError:
                before[ks.key] = None  # broken before the commit: any rendering after it is news
        try:
            after = _render(after_root, rules, ks)
        except GitwardError as err:
            errors.append(f"Kustomization {ks.key.ref}: {err}")
            continue
        if _identity(after) == before[ks.key]:
            continue
        recorded = list_inventory(store, ks.key.ref) if store is not None else ()
        try:
            plans.append(plan_recorded(f"{action.target}:{ks.key.ref}", ks, after, recorded))
        except GitwardError as err:
            errors.append(f"Kustomization {ks.key.ref}: {err}")
    return CommitApply(action.target, tuple(plans), tuple(errors))


def _render(root: Path, rules: RuleSet, ks: Kustomization) -> tuple[Manifest, ...]:
    return build_kustomization(root, ks, source=checkout_source(rules, ks)).manifests


def _identity(manifests: Sequence[Manifest]) -> frozenset[tuple[str, str]]:
    return frozenset((str(m.id), checksum(m)) for m in manifests)
