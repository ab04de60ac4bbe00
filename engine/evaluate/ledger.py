"""A repository's tag ledger in a policy's order: what `gitward images tags` lists.

The order a user needs is the one the policy ranks by, not when tags appeared: the selected tag
first, then the runner-up and the other candidates by rank, then the tags the policy passed over
(filtered, unparsable, out of range, tied with a candidate), then tags its latest decision did
not see (listed since, or gone), and the excluded tags last (`invalid` among them: a tag the
OCI grammar does not allow, which the ledger records as excluded). Within each group, newest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.model import RegistryTag
from engine.rules.ocitag import is_valid_tag

EXCLUDED = "excluded"
INVALID = "invalid"
GONE = "gone"
UNDECIDED = "undecided"
"""A tag the policy's latest decision did not see: listed after it was made."""


@dataclass(frozen=True)
class LedgerLine:
    """One tag of the ledger, with its rank and verdict in the policy's latest decision (rank
    None and verdict "" when no decision orders the list)."""

    tag: RegistryTag
    rank: int | None
    verdict: str


Verdicts = Mapping[str, tuple[int | None, str]]
"""Each tag's rank and verdict in a decision's trace (engine/store/decisions.py
`decision_verdicts`)."""


def in_policy_order(tags: Sequence[RegistryTag], verdicts: Verdicts | None) -> list[LedgerLine]:
    """`tags` ranked by a decision's `verdicts` (None: newest first), excluded tags last."""
    judged = verdicts if verdicts is not None else {}
    lines: list[tuple[int, int, LedgerLine]] = []
    newest = sorted(tags, key=lambda t: (t.first_seen, t.tag), reverse=True)
    for tag in newest:
        rank, verdict = judged.get(tag.tag, (None, None))
        if not is_valid_tag(tag.tag):
            lines.append((3, 0, LedgerLine(tag, None, INVALID)))
        elif tag.excluded:
            lines.append((3, 0, LedgerLine(tag, None, EXCLUDED)))
        elif tag.gone_at is not None:
            lines.append((2, 0, LedgerLine(tag, None, GONE)))
        elif verdict is None:
            lines.append((2, 0, LedgerLine(tag, None, UNDECIDED if verdicts is not None else "")))
        elif rank is not None:
            lines.append((0, rank, LedgerLine(tag, rank, verdict)))
        else:
            lines.append((1, 0, LedgerLine(tag, None, verdict)))
    return [line for _, _, line in sorted(lines, key=lambda item: (item[0], item[1]))]
