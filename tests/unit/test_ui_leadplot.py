"""The lead-time plot's geometry and the durations it prints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.store.leadtime import LeadTime
from engine.ui.leadplot import duration, lead_plot

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def lead(tag: str, hour: int, to_commit: int, to_apply: int | None) -> LeadTime:
    committed = T0 + timedelta(hours=hour)
    return LeadTime("apps/web", "apps/web", tag, committed - timedelta(seconds=to_commit), "c" * 40,
                    committed, None if to_apply is None else committed + timedelta(seconds=to_apply),
                    to_commit, to_apply)


def test_durations_read_as_a_person_says_them() -> None:
    assert [duration(s) for s in (0, 59, 90, 3600, 7260, 90061, None)] == [
        "0s", "59s", "1m 30s", "1h", "2h 1m", "1d 1h", "not yet"]


def test_bars_stand_at_their_commit_time_with_the_apply_stacked_on_top() -> None:
    plot = lead_plot([lead("b", 10, 600, None), lead("a", 0, 1200, 600)])
    first, second = plot.stacks
    assert first.title == "apps/web a: 20m to commit, 10m to apply"
    assert second.title == "apps/web b: 10m to commit, not applied from that commit"
    assert first.x < second.x <= plot.width
    assert first.apply_y is not None and first.apply_y < first.commit_y < plot.axis_y
    assert second.apply_y is None
    tallest = plot.axis_y - first.apply_y
    assert abs((plot.axis_y - second.commit_y) - tallest / 3) < 0.2, "heights are linear in time"
    assert [level.label for level in plot.levels] == ["0s", "7m 30s", "15m", "22m 30s", "30m"]


def test_no_commits_draw_nothing() -> None:
    plot = lead_plot([])
    assert plot.stacks == () and plot.ticks == () and plot.height > 0

