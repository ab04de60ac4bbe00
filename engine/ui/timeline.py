"""The image policy's timeline as geometry: one row per tag from first to last seen, the
selection stepping between rows over time, held updates marked.

Pure: the page template draws these shapes as SVG, so a test can check what is drawn without
a browser, and the picture needs no script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.evaluate.explain import is_gate
from engine.model import Decision, RegistryTag

WIDTH = 960
LEFT = 8
RIGHT = 8
TOP = 8
AXIS = 28
ROW = 6
MAX_ROWS = 120
"""Rows drawn at most: the newest tags by first sighting, plus every tag ever selected."""


@dataclass(frozen=True)
class Bar:
    """A tag's life: first seen at `x1`, last seen (or gone) at `x2`."""

    tag: str
    y: float
    x1: float
    x2: float
    gone: bool
    selected: bool
    title: str


@dataclass(frozen=True)
class Mark:
    """A point in time on a row: a decision that selected the tag, or a held update."""

    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    bars: tuple[Bar, ...]
    path: str
    """The selection as an SVG path: a step from row to row at each change."""
    selections: tuple[Mark, ...]
    holds: tuple[Mark, ...]
    ticks: tuple[Tick, ...]
    axis_y: float
    deployed: Mark | None
    """Where the tag git deploys now sits: at the right end of its row."""
    hidden: int
    """Tags left out to keep the plot readable (older, never selected); excluded tags (the
    repository's exclusionList) are never drawn."""


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def timeline(tags: Sequence[RegistryTag], decisions: Sequence[Decision],
             deployed: str | None = None) -> Timeline:
    """The plot of a repository's `tags`, a policy's `decisions` (any order) and the tag git
    `deployed` now (its row is always drawn)."""
    chronological = sorted(decisions, key=lambda d: (d.decided_at, d.id or 0))
    chosen = {d.selected_tag for d in chronological if d.selected_tag and not is_gate(d)}
    ordered = sorted((t for t in tags if not t.excluded), key=lambda t: (t.first_seen, t.tag))
    kept = list(ordered[-MAX_ROWS:])
    kept += [t for t in ordered[:-MAX_ROWS] if t.tag in chosen or t.tag == deployed]
    kept.sort(key=lambda t: (t.first_seen, t.tag))
    times = [t.first_seen for t in kept] + [t.gone_at or t.last_seen for t in kept]
    times += [d.decided_at for d in chronological]
    start, end = (min(times), max(times)) if times else (datetime(1970, 1, 1), datetime(1970, 1, 2))
    span = max((end - start).total_seconds(), 1.0)
    inner = WIDTH - LEFT - RIGHT

    def x(when: datetime) -> float:
        return round(LEFT + inner * (when - start).total_seconds() / span, 1)

    row = {t.tag: TOP + ROW * i + ROW / 2 for i, t in enumerate(kept)}
    bars = tuple(
        Bar(t.tag, row[t.tag], x(t.first_seen), max(x(t.gone_at or t.last_seen), x(t.first_seen) + 2),
            t.gone_at is not None, t.tag in chosen,
            f"{t.tag}: first seen {_stamp(t.first_seen)}, "
            + (f"gone {_stamp(t.gone_at)}" if t.gone_at else f"last seen {_stamp(t.last_seen)}"))
        for t in kept)
    selections: list[Mark] = []
    holds: list[Mark] = []
    for d in chronological:
        if d.selected_tag not in row:
            continue
        assert d.selected_tag is not None
        point = Mark(x(d.decided_at), row[d.selected_tag], f"{_stamp(d.decided_at)}: "
                     + (d.held if is_gate(d) else
                        f"selected {d.selected_tag}"))
        if is_gate(d):
            holds.append(point)
            continue
        if not selections or selections[-1].y != point.y:
            selections.append(point)
    path = "".join(f"H{p.x}V{p.y}" if i else f"M{p.x},{p.y}" for i, p in enumerate(selections))
    if selections:
        path += f"H{x(end)}"
    axis_y = TOP + ROW * len(kept) + 8
    here = None
    if deployed in row:
        here = Mark(x(end), row[deployed], f"deployed: git holds {deployed} now")
    label = "%Y-%m-%d" if span >= 5 * 86400 else "%m-%d %H:%M"
    ticks = tuple(Tick(x(start + timedelta(seconds=span * i / 5)),
                       (start + timedelta(seconds=span * i / 5)).strftime(label))
                  for i in range(6))
    return Timeline(WIDTH, int(axis_y + AXIS), bars, path, tuple(selections), tuple(holds), ticks,
                    axis_y, here, len(ordered) - len(kept))

