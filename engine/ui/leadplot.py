"""The lead-time plot as geometry: one bar per committed tag at its commit time, its height the
time from first seen to commit, with the time from commit to apply stacked on top.

Pure, like the policy timeline (engine/ui/timeline.py): the template draws the shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from engine.store.leadtime import LeadTime
from engine.ui.timeline import Tick

WIDTH = 960
HEIGHT = 260
LEFT = 56
RIGHT = 12
TOP = 10
AXIS = 28
BAR = 6


@dataclass(frozen=True)
class Stack:
    x: float
    commit_y: float
    """Top of the to-commit bar; it runs down to the axis."""
    apply_y: float | None
    """Top of the to-apply bar, stacked on the to-commit bar; None when never applied."""
    title: str


@dataclass(frozen=True)
class Level:
    """A mark on the duration axis."""

    y: float
    label: str


@dataclass(frozen=True)
class LeadPlot:
    width: int
    height: int
    left: int
    axis_y: float
    stacks: tuple[Stack, ...]
    ticks: tuple[Tick, ...]
    levels: tuple[Level, ...]


def duration(seconds: int | None) -> str:
    """`90` -> `1m 30s`, `7200` -> `2h`: as a person reads a lead time."""
    if seconds is None:
        return "not yet"
    parts: list[str] = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if seconds >= size or (unit == "s" and not parts):
            count, seconds = divmod(seconds, size)
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2])


def lead_plot(rows: Sequence[LeadTime]) -> LeadPlot:
    """The plot of `rows` (any order)."""
    axis_y = TOP + HEIGHT
    if not rows:
        return LeadPlot(WIDTH, int(axis_y + AXIS), LEFT, axis_y, (), (), ())
    start = min(r.committed_at for r in rows)
    span = max((max(r.committed_at for r in rows) - start).total_seconds(), 1.0)
    tallest = max(max(r.seconds_to_commit, 0) + max(r.seconds_to_apply or 0, 0) for r in rows) or 1
    inner = WIDTH - LEFT - RIGHT - BAR

    def y(seconds: int) -> float:
        return round(axis_y - HEIGHT * max(seconds, 0) / tallest, 1)

    stacks = tuple(
        Stack(round(LEFT + inner * (r.committed_at - start).total_seconds() / span, 1),
              y(r.seconds_to_commit),
              None if r.seconds_to_apply is None else y(r.seconds_to_commit + r.seconds_to_apply),
              f"{r.policy} {r.tag}: {duration(r.seconds_to_commit)} to commit, "
              + (f"{duration(r.seconds_to_apply)} to apply" if r.seconds_to_apply is not None
                 else "not applied from that commit"))
        for r in sorted(rows, key=lambda r: r.committed_at))
    label = "%Y-%m-%d" if span >= 5 * 86400 else "%m-%d %H:%M"
    ticks = tuple(Tick(LEFT + inner * i / 4, (start + timedelta(seconds=span * i / 4)).strftime(label))
                  for i in range(5))
    levels = tuple(Level(y(tallest * i // 4), duration(tallest * i // 4)) for i in range(5))
    return LeadPlot(WIDTH, int(axis_y + AXIS), LEFT, axis_y, stacks, ticks, levels)
