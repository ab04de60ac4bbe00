"""The rules parser's cached tables: kept in the user's own cache directory, never read from one
that others may write to (the cache is a pickle)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.rules import syntax


def test_the_cache_lives_in_a_private_directory_under_xdg_cache_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    found = syntax._cache_file()
    assert found == tmp_path / "gitward" / "rules-grammar.lark-cache"
    assert (tmp_path / "gitward").stat().st_mode & 0o777 == 0o700


def test_a_directory_others_may_write_to_is_not_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "gitward").mkdir()
    (tmp_path / "gitward").chmod(0o777)
    assert syntax._cache_file() is None


def test_an_unwritable_cache_home_builds_the_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    assert syntax._cache_file() is None
