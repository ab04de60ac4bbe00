"""`-o json`: indented, every flat object (below the top) on a line of its own, the same data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from engine.cli.output import dump


def test_a_list_of_flat_objects_is_one_object_a_line_and_reads_back_the_same(
        capsys: pytest.CaptureFixture[str]) -> None:
    seen = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    data = {"policy": "apps/app", "counts": {"lower": 2, "selected": 1}, "summary": ["a", "b"],
            "empty": [], "none": {}, "nested": [{"inner": {"x": 1}}],
            "tags": [{"tag": "1.2.0", "rank": 1, "seen": seen, "excluded": False},
                     {"tag": "1.1.0", "rank": None, "seen": seen, "excluded": True}]}
    dump(data, "json")
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads(json.dumps(data, default=str))
    lines = out.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert '  "counts": {"lower": 2, "selected": 1},' in lines
    assert '    {"tag": "1.2.0", "rank": 1, "seen": "2026-01-02 03:04:00+00:00", "excluded": false},' in lines
    assert '      "inner": {"x": 1}' in lines


def test_a_top_level_list_and_scalars(capsys: pytest.CaptureFixture[str]) -> None:
    dump([{"tag": "1.0.0"}], "json")
    dump("x", "json")
    assert capsys.readouterr().out == '[\n  {"tag": "1.0.0"}\n]\n"x"\n'
