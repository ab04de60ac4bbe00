"""A Flux repository's commit message template works unchanged: `gitward plan` shows the message
Go renders (tests/unit/gotemplate_cases.py holds the same template and Go's output), and a
template that fails is a located error in `gitward plan` and `gitward check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.cli import main
from tests.conftest import EXAMPLES
from tests.integration.test_images_update import import_tags
from tests.unit.gotemplate_cases import CASES

AUTOMATION = "cluster/apps/podinfo/image-update.yaml"
TEMPLATE, _, GO_OUTPUT, _ = CASES[0]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def with_template(tmp_path: Path, template: str) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "homelab", repo)
    path = repo / AUTOMATION
    block = "".join(f"        {line}\n" if line else "\n" for line in template.splitlines())
    text = path.read_text().replace(
        "      messageTemplate: 'Update podinfo image'\n",
        "      messageTemplate: |\n" + block + "      messageTemplateValues:\n        cluster: homelab\n")
    path.write_text(text)
    return repo


def test_plan_shows_the_message_go_renders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert TEMPLATE.startswith("chore(images): {{ .AutomationObject.Name }}")
    repo = with_template(tmp_path, TEMPLATE)
    state = str(tmp_path / "state.db")
    import_tags(capsys, state, repo, tmp_path)
    import_tags(capsys, state, repo, tmp_path, "ledger/ledger", "20251103-1130-sha-4d5e6f7\n")
    code, out, err = run(capsys, "--state", state, "plan", "--repo", str(repo), "--offline")
    assert code == 0, err
    shown = "".join(f"    {line}\n" for line in GO_OUTPUT.rstrip().splitlines())
    assert shown + "--- a/cluster/apps/podinfo/deployment.yaml" in out


def test_a_failing_template_is_a_located_error_in_plan_and_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    repo = with_template(tmp_path, "Update\n{{ range .Changed.Changes }}{{ .NewValue | upper 1 }}{{ end }}")
    state = str(tmp_path / "state.db")
    import_tags(capsys, state, repo, tmp_path)
    code, out, err = run(capsys, "--state", state, "plan", "--repo", str(repo), "--offline")
    assert code == 1
    assert "commit to" not in out
    assert (f"{repo / AUTOMATION}:20:24: error: ImageUpdateAutomation podinfo/podinfo: commit message "
            "template: template: commit message:2:43: executing \"commit message\" at <upper>: "
            "wrong number of args for upper: want 1 got 2") in err
    monkeypatch.chdir(repo)
    code, out, err = run(capsys, "check", "--repo", ".")
    assert code == 2
    assert (f"{AUTOMATION}:20:24: error: ImageUpdateAutomation podinfo/podinfo: commit message "
            "template: template: commit message:2:43:") in out
