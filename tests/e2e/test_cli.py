"""The CLI on examples/homelab: get, export, convert, suspend/resume, and the unbuilt kinds."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import click
import pytest
import yaml

from engine.cli import cli, main
from engine.errors import Problems
from engine.rules.flux import read_flux
from tests.conftest import EXAMPLES, ROOT

HOMELAB = str(EXAMPLES / "homelab")
EXAMPLE_DB = ROOT / "state.db.example"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_get_all_reads_the_example_store_without_writing_it(capsys: pytest.CaptureFixture[str]) -> None:
    before = hashlib.sha256(EXAMPLE_DB.read_bytes()).hexdigest()
    code, out, err = run(capsys, "--state", str(EXAMPLE_DB), "get", "all", "--repo", HOMELAB, "-A")
    assert code == 0, err
    assert "main@sha1:f079f121bf7a" in out
    assert "successful scan: found 8 tags" in out
    assert all(len(line) <= 100 for line in out.splitlines())
    assert hashlib.sha256(EXAMPLE_DB.read_bytes()).hexdigest() == before


def test_get_json_is_one_object_per_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--state", str(EXAMPLE_DB), "get", "images", "repository",
                       "--repo", HOMELAB, "-A", "-o", "json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["podinfo"]["tags"] == 8 and rows["podinfo"]["ready"] == "True"
    assert rows["ledger"]["namespace"] == "ledger"


def test_get_without_a_store_says_unknown(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    code, out, _ = run(capsys, "--state", str(tmp_path / "none.db"), "get", "sources", "git",
                       "--repo", HOMELAB, "-o", "yaml")
    assert code == 0
    [row] = yaml.safe_load(out)
    assert (row["name"], row["ready"], row["message"]) == ("flux-system", "Unknown", "no state store")
    assert not (tmp_path / "none.db").exists()


def test_get_unknown_kind_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "get", "helmcharts-and-more", "--repo", HOMELAB)
    assert code == 2
    assert "unknown kind" in err and "Traceback" not in err


def test_get_lists_flux_kinds_gitward_does_not_reconcile(capsys: pytest.CaptureFixture[str],
                                                         homelab_corpus: Path) -> None:
    code, out, _ = run(capsys, "get", "helmreleases", "-A", "--repo", str(homelab_corpus))
    assert code == 0
    assert "traefik" in out and "not reconciled by gitward" in out
    code, _, err = run(capsys, "suspend", "helmrelease", "traefik", "--repo", str(homelab_corpus))
    assert code == 2
    assert "HelmRelease is not reconciled by gitward" in err


def test_export_all_is_flux_yaml_that_reads_back(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "export", "all", "--repo", HOMELAB)
    assert code == 0
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert {d["kind"] for d in docs} == {"GitRepository", "Kustomization", "ImageRepository",
                                         "ImagePolicy", "ImageUpdateAutomation"}
    problems = Problems()
    assert len(read_flux("export.yaml", out, problems)) == len(docs) == 8
    assert not problems.errors


def test_export_one_object(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "export", "image", "policy", "podinfo", "-n", "podinfo",
                       "--repo", HOMELAB)
    assert code == 0
    [doc] = list(yaml.safe_load_all(out))
    assert doc["spec"]["policy"] == {"semver": {"range": ">=6.0.0 <7.0.0"}}


def test_export_all_of_an_empty_namespace_says_where_the_objects_are(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A backup of `flux-system`'s image repositories would be empty: said, with `-A`, exit 1."""
    code, out, err = run(capsys, "export", "image", "repository", "--all", "--repo", HOMELAB)
    assert code == 1 and out == ""
    assert err.strip() == ("no ImageRepository in namespace flux-system: nothing exported; 2 are "
                           "in namespaces ledger, podinfo: pass -A for every namespace (or -n "
                           "NAMESPACE)")
    code, out, _ = run(capsys, "export", "image", "repository", "--all", "-A", "--repo", HOMELAB)
    assert code == 0
    assert [d["metadata"]["namespace"] for d in yaml.safe_load_all(out) if d] == ["ledger", "podinfo"]
    code, out, err = run(capsys, "export", "image", "repository", "--all", "-n", "podinfo",
                         "--repo", HOMELAB)
    assert code == 0 and "name: podinfo" in out and err == ""


def test_export_all_of_a_kind_with_no_object_anywhere(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "export", "source", "oci", "--all", "-A", "--repo", HOMELAB)
    assert code == 0 and out == ""
    assert "no OCIRepository found in any namespace: nothing exported" in err


def test_convert_rules_to_flux_keeps_gitward_gates(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "convert", f"{HOMELAB}/cluster/apps/ledger/ledger.rules")
    assert code == 0
    policy = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "ImagePolicy")
    assert policy["spec"]["policy"] == {"alphabetical": {"order": "asc"}}
    assert policy["metadata"]["annotations"]["gitward.dev/hold"] == "10m0s"


def test_convert_to_flux_says_what_flux_cannot_hold(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    rules = tmp_path / "ops.rules"
    rules.write_text('source git homelab {\n  url "https://example.com/homelab.git"\n}\n\n'
                     'alert ops {\n  on failure\n  webhook "https://hooks.example.com/x"\n}\n')
    code, out, err = run(capsys, "convert", str(rules), "--to", "flux")
    assert code == 1
    assert [d["kind"] for d in yaml.safe_load_all(out)] == ["GitRepository"]
    assert "ops.rules:5:7: warning: Alert ops has no Flux equivalent: left out of the output" in err
    assert err.endswith("1 left out of the output: see the warnings above\n")


def test_convert_flux_to_dsl(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "convert", f"{HOMELAB}/cluster/apps/podinfo/image-policy.yaml")
    assert code == 0
    assert 'select highest semver ">=6.0.0 <7.0.0"' in out


def test_suspend_and_resume_survive_in_the_store(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    code, out, _ = run(capsys, "--state", state, "suspend", "image", "update", "podinfo",
                       "-n", "podinfo", "--repo", HOMELAB)
    assert code == 0 and "suspended ImageUpdateAutomation podinfo/podinfo" in out
    _, out, _ = run(capsys, "--state", state, "get", "images", "update", "-A", "--repo", HOMELAB,
                    "-o", "json")
    assert {r["name"]: r["suspended"] for r in json.loads(out)} == {"ledger": False, "podinfo": True}
    code, out, _ = run(capsys, "--state", state, "resume", "image", "update", "podinfo",
                       "-n", "podinfo", "--repo", HOMELAB)
    assert code == 0 and "resumed" in out
    _, out, _ = run(capsys, "--state", state, "get", "images", "update", "-A", "--repo", HOMELAB,
                    "-o", "json")
    assert not any(r["suspended"] for r in json.loads(out))


def test_suspend_unknown_object_names_what_exists(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    code, _, err = run(capsys, "--state", str(tmp_path / "s.db"), "suspend", "kustomization",
                       "apps", "--repo", HOMELAB)
    assert code == 2
    assert "Kustomization flux-system/apps not found (defined: flux-system/flux-system)" in err


def test_every_command_is_documented() -> None:
    docs = (ROOT / "README.md").read_text() + "".join(
        p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
    for name in cli.list_commands(click.Context(cli)):
        assert f"gitward {name}" in docs, f"`gitward {name}` is not documented"


def test_readme_has_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [block.split("```", 1)[0].strip() for block in quick.split("```bash\n")[1:]]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()


def test_a_copy_of_the_example_repo_checks_clean(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "homelab"
    shutil.copytree(EXAMPLES / "homelab", repo)
    code, _, err = run(capsys, "check", "--repo", str(repo), "--strict")
    assert code == 0, err


def test_plan_follows_each_commit_with_the_apply_actions_it_leads_to(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One plan, tag -> file -> cluster: the post-commit render against the recorded inventory."""
    state = tmp_path / "state.db"
    shutil.copy(EXAMPLE_DB, state)
    with sqlite3.connect(state) as db:  # the recorded podinfo Deployment predates the new tag
        db.execute("UPDATE cluster_objects SET checksum = 'sha256:before' "
                   "WHERE kind = 'Deployment' AND name = 'podinfo'")

    code, out, err = run(capsys, "--state", str(state), "plan", "--repo", HOMELAB, "--offline", "-o", "json")

    assert code == 0, err
    plan = json.loads(out)
    [commit] = plan["actions"]
    [applied] = plan["apply"]
    assert applied["commit"] == f"{commit['repository']}@{commit['branch']}" and applied["errors"] == []
    [ks_plan] = applied["plans"]
    assert ks_plan["kustomization"] == "flux-system/flux-system"
    actions = [a for stage in ks_plan["stages"] for a in stage["actions"]]
    assert [(a["object"], a["change"]) for a in actions if a["change"] != "unchanged"] == [
        ("Deployment.apps/podinfo/podinfo", "update")]
    assert len(actions) == 20 and ks_plan["prune"] == []

    code, out, err = run(capsys, "--state", str(state), "plan", "--repo", HOMELAB, "--offline")
    assert code == 0, err
    lines = out.splitlines()
    at = lines.index("then apply Kustomization flux-system/flux-system (against the recorded inventory): "
                     "1 change, 19 unchanged")
    assert lines[at + 1] == "    Deployment.apps/podinfo/podinfo configured"
    assert at > max(i for i, line in enumerate(lines) if line.startswith("+++ b/"))
