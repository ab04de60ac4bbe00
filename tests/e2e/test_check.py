"""`gitward check` on the example repository and on a corpus of broken inputs.

Each folder of tests/corpus/broken is a tiny repository with one kind of mistake; its
`expected.txt` lists lines that must appear in the output (`path:line:col: error: ...`).
"""

from __future__ import annotations

import json
import shutil
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


def test_the_report_goes_to_standard_output(tmp_path: Path) -> None:
    """`gitward check > report.txt` keeps the whole report; stderr is for what stops the check."""
    case = CORPUS / "broken" / "dsl-unknown-keyword"
    report = tmp_path / "report.txt"
    with report.open("w") as out:
        result = subprocess.run([sys.executable, "-m", "engine", "check", "--repo", "."], cwd=case,
                                stdout=out, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 2 and result.stderr == ""
    text = report.read_text()
    assert "app.rules:3:" in text and "error:" in text
    assert text.splitlines()[-1].startswith("✗ ") and "1 error" in text.splitlines()[-1]
    missing = subprocess.run([sys.executable, "-m", "engine", "check", "--repo", "no-such-dir"],
                             cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stdout == ""
    assert "no-such-dir: the repository path is not a directory" in missing.stderr


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: podinfo
  labels: a: b
"""


def test_a_yaml_syntax_error_in_a_file_flux_reads_is_located(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A ConfigMap in a Kustomization's path, and a patch file a kustomization names: both are
    read by Flux, so both are errors at their own line; a file no Kustomization reads is not."""
    repo = tmp_path / "homelab"
    shutil.copytree(EXAMPLES / "homelab", repo)
    (repo / "cluster/apps/podinfo/settings.yaml").write_text(CONFIGMAP)
    extra = repo / "cluster/infrastructure/extra"
    extra.mkdir()
    (extra / "kustomization.yaml").write_text("resources: [cm.yaml]\npatches: [{path: patch.yaml}]\n")
    (extra / "cm.yaml").write_text(CONFIGMAP.replace("  labels: a: b\n", ""))
    (extra / "patch.yaml").write_text(CONFIGMAP)
    (extra / "unread.yaml").write_text("a: b: c\n")  # listed by no kustomization: Flux never reads it
    code, out = run_check(repo, capsys, monkeypatch)
    assert code == 2, out
    assert "cluster/apps/podinfo/settings.yaml:6:12: error: document 1: mapping values are not allowed here" in out
    assert "cluster/infrastructure/extra/patch.yaml:6:12: error: document 1: mapping values are not allowed here" in out
    assert "cluster/infrastructure/extra/kustomization.yaml:2:11: error: patches: unable to parse" in out
    assert "unread.yaml" not in out
