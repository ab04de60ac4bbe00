"""Lints over the markers of a repository: what Flux would silently skip, said out loud.

Pure: the caller locates every marked value (engine/evaluate/rewrite.py `locate`, the same
parse the rewrite uses) and passes them with their repo-relative paths.
"""

from __future__ import annotations

from typing import Iterable

from engine.errors import Problems, SourcePos, did_you_mean
from engine.evaluate.plan import in_scope
from engine.evaluate.rewrite import MarkedValue
from engine.model import ImagePolicy, ObjectKey, RuleSet


def lint_markers(rules: RuleSet, values: Iterable[MarkedValue], problems: Problems) -> None:
    """Markers that name nothing, that no automation applies, and policies no marker uses."""
    policies = {p.key: p for p in rules.image_policies}
    used: set[ObjectKey] = set()
    for value in values:
        m = value.marker
        pos = SourcePos(m.path, m.line, m.column, syntax="marker")
        key = ObjectKey(ImagePolicy.KIND, m.policy_namespace, m.policy_name)
        if key not in policies:
            problems.warning(
                f"marker names ImagePolicy {key.ref}, which is not defined"
                + did_you_mean(key.ref, [k.ref for k in policies]),
                pos,
                code="unknown-policy",
            )
            continue
        used.add(key)
        covering = [u for u in rules.image_updates if in_scope(m.path, u.path)]
        if not covering:
            problems.warning(
                f"marker for ImagePolicy {key.ref} is outside every image update's path; "
                "nothing will update it",
                pos,
                code="marker-uncovered",
            )
        elif not any(u.namespace == m.policy_namespace for u in covering):
            names = ", ".join(u.key.ref for u in covering)
            problems.warning(
                f"marker for ImagePolicy {key.ref} is ignored by {names}: an image update "
                "applies only policies in its own namespace (Flux skips it silently)",
                pos,
                code="marker-namespace",
            )
    for key, policy in policies.items():
        if key not in used:
            problems.warning(f"ImagePolicy {key.ref} is not used by any marker", policy.origin,
                             code="unused-policy")
