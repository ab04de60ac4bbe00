"""The policy timeline's geometry: rows in order of first sighting, the selection stepping
between rows at each change, held updates marked on the proposed tag's row."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.model import Decision, Gate, RegistryTag
from engine.ui.timeline import MAX_ROWS, RIGHT, WIDTH, timeline

T0 = datetime(2026, 1, 1)


def tag(name: str, day: int, last: int = 10, gone: int | None = None) -> RegistryTag:
    return RegistryTag("apps/web", name, T0 + timedelta(days=day), T0 + timedelta(days=last),
                       gone_at=T0 + timedelta(days=gone) if gone is not None else None)


def pick(name: str, day: int, error: str | None = None, gate: Gate | None = None) -> Decision:
    return Decision("apps/web", T0 + timedelta(days=day), selected_tag=name, error=error, gate=gate)


def test_rows_follow_first_sighting_and_the_selection_steps_at_each_change() -> None:
    tags = [tag("b", 1), tag("a", 0, gone=5), tag("c", 2)]
    plot = timeline(tags, [pick("a", 0), pick("a", 1), pick("c", 2), pick("b", 4)])
    assert [b.tag for b in plot.bars] == ["a", "b", "c"]
    assert [b.gone for b in plot.bars] == [True, False, False]
    rows = {b.tag: b.y for b in plot.bars}
    assert [m.y for m in plot.selections] == [rows["a"], rows["c"], rows["b"]]
    assert plot.path.startswith(f"M{plot.bars[0].x1},{rows['a']}")
    assert plot.path.count("V") == 2 and plot.holds == ()
    assert plot.bars[0].x1 < plot.bars[1].x1 < plot.bars[2].x1 <= plot.width


def test_a_held_update_is_marked_not_drawn_as_a_selection() -> None:
    tags = [tag("new", 0), tag("old", 1)]
    held = pick("old", 3, "the ledger first saw old before new", Gate.ROLLBACK)
    plot = timeline(tags, [pick("new", 1), pick("old", 2), held])
    [mark] = plot.holds
    assert mark.y == next(b.y for b in plot.bars if b.tag == "old")
    assert "rollback: the ledger first saw old" in mark.title
    assert len(plot.selections) == 2


def test_many_tags_keep_the_newest_and_every_selected_one() -> None:
    tags = [tag(f"t{i:04d}", i, last=MAX_ROWS + 60) for i in range(MAX_ROWS + 50)]
    plot = timeline(tags, [pick("t0000", 0)])
    drawn = {b.tag for b in plot.bars}
    assert "t0000" in drawn and "t0001" not in drawn and f"t{MAX_ROWS + 49:04d}" in drawn
    assert len(drawn) == MAX_ROWS + 1 and plot.hidden == 49


def test_no_tags_no_decisions_is_an_empty_plot() -> None:
    plot = timeline([], [])
    assert plot.bars == () and plot.path == "" and len(plot.ticks) == 6


def test_the_deployed_tag_is_marked_at_the_end_of_its_row_and_always_drawn() -> None:
    tags = [tag(f"t{i:03}", i) for i in range(MAX_ROWS + 10)]
    plot = timeline(tags, [pick("t119", 120)], deployed="t000")
    assert plot.deployed is not None
    rows = {b.tag: b.y for b in plot.bars}
    assert "t000" in rows, "the deployed tag is drawn even when older than the rows kept"
    assert plot.deployed.y == rows["t000"] and plot.deployed.x == WIDTH - RIGHT, "at the end of time"
    assert plot.deployed.title == "deployed: git holds t000 now"
    assert timeline(tags, [], deployed="not-listed").deployed is None
