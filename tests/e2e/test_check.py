"""`gitward check` on the example repository and on a corpus of broken inputs.

Each folder of tests/corpus/broken is a tiny repository with one kind of mistake; its
`expected.txt` lists lines that must appear in the output (`path:line:col: error: ...`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from tests.conftest import CORPUS, EXAMPLES

BROKEN = sorted(p for p in (CORPUS / "broken").iterdir() if p.is_dir())
LINTS = sorted(p for p in (CORPUS / "lint").iterdir() if p.is_dir())


def run_check(repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
              *args: str) -> tuple[int, str]:
    monkeypatch.chdir(repo)
    code = main(["check", "--repo", ".", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def expected_lines(case: Path) -> list[str]:
    lines = (case / "expected.txt").read_text().splitlines()
    return [line for line in lines if line.strip()]


def test_example_repository_is_clean(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run_check(EXAMPLES / "homelab", capsys, monkeypatch, "--strict")
    assert code == 0, out
    assert "0 errors, 0 warnings" in out


def test_corpus_has_enough_broken_inputs() -> None:
    assert len(BROKEN) >= 25


@pytest.mark.parametrize("case", BROKEN, ids=[p.name for p in BROKEN])
def test_broken_input_gives_located_errors(case: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run_check(case, capsys, monkeypatch)
    assert code == 2, out
    assert "Traceback" not in out
    for line in expected_lines(case):
        assert line in out, f"missing {line!r} in:\n{out}"


@pytest.mark.parametrize("case", LINTS, ids=[p.name for p in LINTS])
def test_lint_warns_and_strict_fails(case: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run_check(case, capsys, monkeypatch)
    assert code == 0, out
    for line in expected_lines(case):
        assert line in out, f"missing {line!r} in:\n{out}"
    strict_code, _ = run_check(case, capsys, monkeypatch, "--strict")
    assert strict_code == 2


def test_json_output_lists_problems(capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    case = CORPUS / "broken" / "dsl-unknown-keyword"
    monkeypatch.chdir(case)
    code = main(["check", "--repo", ".", "-o", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    assert report["ok"] is False
    first = report["problems"][0]
    assert (first["path"], first["line"], first["severity"]) == ("app.rules", 3, "error")


def test_no_traceback_from_the_installed_command() -> None:
    """The real console entry point, as a user runs it, on every broken input at once."""
    for case in BROKEN:
        result = subprocess.run([sys.executable, "-m", "engine", "check", "--repo", "."],
                                cwd=case, capture_output=True, text=True)
        assert result.returncode == 2, (case.name, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout
