"""Global options are accepted after the subcommand too, as kubectl and flux accept theirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import global_options_first, main


@pytest.mark.parametrize(("given", "parsed"), [
    (["get", "all", "--state", "a.db"], ["--state", "a.db", "get", "all"]),
    (["get", "all", "--state=a.db", "-o", "json"], ["--state=a.db", "get", "all", "-o", "json"]),
    (["--state", "a.db", "get", "--state", "b.db"], ["--state", "a.db", "--state", "b.db", "get"]),
    (["sql", "--", "--state", "x"], ["sql", "--", "--state", "x"]),
    (["get", "all"], ["get", "all"]),
])
def test_global_options_move_to_the_front(given: list[str], parsed: list[str]) -> None:
    assert global_options_first(given) == parsed


def test_state_after_the_subcommand_names_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    assert main(["db", "upgrade", "--state", str(first)]) == 0
    assert first.exists() and not second.exists()
    assert main(["--state", str(second), "db", "upgrade", "--state", str(first)]) == 0
    assert not second.exists(), "the last --state given wins"
    capsys.readouterr()
    assert main(["get", "all", "--state"]) == 2
    assert "requires an argument" in capsys.readouterr().err
