"""Which of two images is older, by time and not by the policy's own order.

A policy's order says which tag it prefers, not which image is newer: `order: desc` prefers the
OLDEST build, `main-9` sorts above `main-10`, a re-pushed tag keeps its name. Before a marked
value moves, the rollback gate (engine/evaluate/plan.py) compares the image git deploys with the
selected one by the facts the caller gathered (engine/model.py `ImageFacts`):

1. the same manifest digest: the same image, nothing is rolled back;
2. when each image was built, its configuration's `created` as the registry serves it (a time
   before 1980 is a reproducible build's placeholder, not a build time);
3. else when the ledger first saw each tag, when those differ (one scan lists both: they do not);
4. else the order is unknown, and the comparison says which facts are missing and why.

Pure: the times are facts passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from engine.model import ImageFacts
from engine.rules.markers import MarkerPart

PLACEHOLDER_BEFORE = datetime(1980, 1, 1, tzinfo=UTC)
"""A `created` before this is a reproducible build's fixed time (ko, Bazel, nix write the epoch)."""


class Age(StrEnum):
    """The selected image relative to the one git deploys."""

    OLDER = "older"
    NEWER = "newer"
    SAME = "same"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Comparison:
    """An `Age` and the facts behind it, in words."""

    age: Age
    basis: str


def compare(deployed: ImageFacts, selected: ImageFacts) -> Comparison:
    """How old `selected` is next to `deployed`, by digest, creation time, then first seen."""
    if deployed.digest and deployed.digest == selected.digest:
        return Comparison(Age.SAME, f"{name(selected)} is the image git deploys ({deployed.digest})")
    then, now = built(deployed), built(selected)
    if then is not None and now is not None and then != now:
        return _ordered(now < then, f"{name(selected)} was built {stamp(now)}", deployed,
                        f"{stamp(then)}; the images' creation times in the registry")
    then, now = deployed.first_seen, selected.first_seen
    if then is not None and now is not None and then != now:
        return _ordered(now < then, f"the ledger first saw {name(selected)} at {stamp(now)}",
                        deployed, f"{stamp(then)}; no creation times to compare: "
                                  f"{_why_not_built(deployed, selected)}")
    return Comparison(
        Age.UNKNOWN,
        f"cannot tell whether {name(selected)} is older than {name(deployed)}, the image git "
        f"deploys: no creation times to compare ({_why_not_built(deployed, selected)}) and "
        f"{_why_not_seen(deployed, selected)}")


def _ordered(older: bool, lead: str, deployed: ImageFacts, detail: str) -> Comparison:
    return Comparison(Age.OLDER if older else Age.NEWER,
                      f"{lead}, {'before' if older else 'after'} {name(deployed)}, the image git "
                      f"deploys ({detail})")


def built(facts: ImageFacts) -> datetime | None:
    """When the image was built, if its configuration says so with a real time."""
    if facts.created is None or facts.created < PLACEHOLDER_BEFORE:
        return None
    return facts.created


def name(facts: ImageFacts) -> str:
    """The image as a user knows it: its tag, else its short digest."""
    return facts.tag or short_digest(facts.digest) or "an image with no tag or digest"


def short_digest(digest: str) -> str:
    algorithm, _, hexa = digest.partition(":")
    return f"{algorithm}:{hexa[:12]}" if hexa else digest


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _why_not_built(deployed: ImageFacts, selected: ImageFacts) -> str:
    reasons = []
    for facts in (selected, deployed):
        if facts.created is not None and facts.created < PLACEHOLDER_BEFORE:
            reasons.append(f"{name(facts)} says it was built {stamp(facts.created)}, a "
                           "reproducible build's placeholder")
        elif facts.created is None:
            reasons.append(f"{name(facts)}: {facts.missing or 'its creation time is not known'}")
    if not reasons and deployed.created is not None:
        reasons.append(f"both say they were built {stamp(deployed.created)}")
    return "; ".join(reasons)


def _why_not_seen(deployed: ImageFacts, selected: ImageFacts) -> str:
    unseen = [name(f) for f in (selected, deployed) if f.first_seen is None]
    if unseen:
        return f"the ledger has never seen {' or '.join(unseen)}"
    assert deployed.first_seen is not None
    return f"the ledger first saw both in the same scan ({stamp(deployed.first_seen)})"


def pinned_digest(value: str, part: MarkerPart) -> str:
    """The digest a marked value pins: a `:digest` marker's value, or the `@sha256:...` of a
    whole reference; "" when it pins none."""
    if part is MarkerPart.DIGEST:
        return value.strip()
    if part is MarkerPart.IMAGE and "@" in value:
        return value.rsplit("@", 1)[1]
    return ""
