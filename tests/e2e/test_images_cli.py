"""`gitward images import|tags|test`, `reconcile image policy` and `explain` on real rule sets.

The user's real case: 80 tags mixing `YYYYMMDD-HHMM-sha-xxxxxxx` builds and bare `sha-xxxxxxx`
tags, sha tags excluded by the repository, and a policy written `alphabetical: order: desc`,
which Flux evaluates to the OLDEST build.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine.cli import main
from tests.conftest import EXAMPLES

HOMELAB = str(EXAMPLES / "homelab")


def build_tags(count: int = 50, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    start = datetime(2025, 11, 1, 8, 0)
    stamps = sorted(start + timedelta(minutes=rng.randrange(0, 90 * 24 * 60)) for _ in range(count))
    return [f"{s:%Y%m%d-%H%M}-sha-{rng.getrandbits(28):07x}" for s in stamps]


def users_tags() -> tuple[list[str], list[str]]:
    builds = build_tags()
    shas = [f"sha-{t[-7:]}" for t in builds[:30]]
    return builds, shas


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_users_real_case_explains_the_oldest_pick(homelab_corpus: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    builds, shas = users_tags()
    assert len(builds + shas) == 80
    state, repo = str(tmp_path / "s.db"), str(homelab_corpus)
    tags = write(tmp_path / "tags.txt", builds + shas)
    for name in ("bluesync", "field-theories"):
        code, out, err = run(capsys, "--state", state, "images", "import",
                             f"field-theories/{name}", "--tags", tags, "--repo", repo)
        assert code == 0, err
        assert "80 tags (50 after exclusions)" in out
    code, out, err = run(capsys, "--state", state, "reconcile", "image", "policy",
                         "field-theories/bluesync", "field-theories/field-theories", "--repo", repo)
    assert code == 0, err
    assert f"ImagePolicy field-theories/bluesync selected {builds[0]}" in out
    assert f"ImagePolicy field-theories/field-theories selected {builds[-1]}" in out

    code, out, _ = run(capsys, "--state", state, "explain", "image", "policy",
                       "field-theories/bluesync", "--repo", repo)
    assert code == 0
    assert f"Selected {builds[0]} (value {builds[0][:8]})" in out
    assert ("warning: order desc selects the lowest value: "
            f"{builds[0][:8]} ({builds[0]}); for the newest timestamp use asc") in out
    assert "excluded: 30 tags" in out

    code, out, _ = run(capsys, "--state", state, "explain", "image", "policy",
                       "field-theories/field-theories", "--repo", repo, "-o", "json")
    report = json.loads(out)
    assert report["selected"] == builds[-1] and report["lints"] == []
    assert report["counts"]["excluded"] == 30
    assert report["tags"][0] == {"tag": builds[-1], "verdict": "selected",
                                 "value": builds[-1][:8] + builds[-1][9:13], "rank": 1,
                                 "reason": report["tags"][0]["reason"]}


def test_semver_policy_from_the_users_repository(homelab_corpus: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    state, repo = str(tmp_path / "s.db"), str(homelab_corpus)
    tags = write(tmp_path / "t.txt", ["1.23.16", "2.0.0", "2.0.2", "2.1.0-beta.1", "2", "latest",
                                      "3.0.0"])
    run(capsys, "--state", state, "images", "import", "uptime-kuma/uptime-kuma", "--tags", tags,
        "--repo", repo)
    code, out, _ = run(capsys, "--state", state, "reconcile", "image", "policy",
                       "uptime-kuma/uptime-kuma", "--repo", repo)
    assert code == 0 and "selected 2.0.2" in out
    _, out, _ = run(capsys, "--state", state, "explain", "image", "policy",
                    "uptime-kuma/uptime-kuma", "--repo", repo)
    assert "Runner-up 2.0.0 lost: a lower version than 2.0.2." in out
    assert "unparsable: 2 tags (2, latest)." in out
    assert "out-of-range: 2 tags" in out and "prerelease-excluded: 1 tag (2.1.0-beta.1)." in out


@pytest.mark.parametrize(("order", "expected"), [("asc", -1), ("desc", 0)])
def test_images_test_agrees_with_flux_order(order: str, expected: int, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    builds, shas = users_tags()
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"""\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: app, namespace: apps}}
spec:
  imageRepositoryRef: {{name: app}}
  filterTags:
    pattern: '^(?P<ts>[0-9]{{8}})-[0-9]{{4}}-sha-[a-f0-9]{{7}}$'
    extract: '$ts'
  policy:
    alphabetical: {{order: {order}}}
""")
    tags = write(tmp_path / "tags.txt", builds + shas)
    code, out, _ = run(capsys, "images", "test", "--policy", str(policy), "--tags", tags,
                       "-o", "json")
    report = json.loads(out)
    assert code == 0 and report["selected"] == builds[expected]
    assert sum(t["verdict"] == "filtered" for t in report["tags"]) == 30
    assert any("order desc" in lint for lint in report["lints"]) is (order == "desc")
    assert any('extract "$ts" leaves out digits the pattern matches (4 digits)' in lint
               for lint in report["lints"])  # the time of day: two builds of one day tie


def test_images_test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "p.rules"
    rules.write_text('image policy apps/app {\n  repository app\n'
                     '  select highest semver ">=2.0.0"\n}\n')
    none = write(tmp_path / "none.txt", ["1.0.0", "latest"])
    code, out, _ = run(capsys, "images", "test", "--policy", str(rules), "--tags", none)
    assert code == 1 and "no tag selected:" in out
    rules.write_text('image policy apps/app {\n  repository app\n'
                     '  select highest semver ">= x.y"\n}\n')
    code, _, err = run(capsys, "images", "test", "--policy", str(rules), "--tags", none)
    assert code == 2 and "invalid semver range" in err and "Traceback" not in err


SEMVER_RULES = 'image policy apps/app {\n  repository app\n  select highest semver ">=1.0.0"\n}\n'


def test_images_test_summarises_and_prints_every_tag_with_all(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "p.rules"
    rules.write_text(SEMVER_RULES)
    releases = [f"1.{i}.0" for i in range(10)]
    tags = write(tmp_path / "t.txt", [*releases, "latest", "0.9.0", "x.sig", "1.10.0-rc.1"])
    code, out, _ = run(capsys, "images", "test", "--policy", str(rules), "--tags", tags)
    assert code == 0 and out.splitlines()[-1] == "selected: 1.9.0"
    shown = [line.split()[1] for line in out.splitlines()[1:7]]
    assert shown == ["1.9.0", "1.8.0", "1.7.0", "1.6.0", "1.5.0", "1.4.0"]  # 5 runners-up
    assert "1.3.0" not in out and "latest" not in out
    assert ("14 tags: 1 selected, 9 lower, 1 excluded, 1 unparsable, 1 out-of-range, "
            "1 prerelease-excluded (6 shown; --all prints every tag)") in out
    code, out, _ = run(capsys, "images", "test", "--policy", str(rules), "--tags", tags, "--all")
    assert code == 0 and "--all prints" not in out
    assert all(f" {tag} " in out for tag in [*releases, "latest", "0.9.0", "x.sig", "1.10.0-rc.1"])
    assert "14 tags: 1 selected, 9 lower," in out


def test_images_test_json_holds_every_tag_and_the_counts(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "p.rules"
    rules.write_text(SEMVER_RULES)
    tags = write(tmp_path / "t.txt", ["1.0.0", "2.0.0", "latest"])
    code, out, _ = run(capsys, "images", "test", "--policy", str(rules), "--tags", tags, "-o", "json")
    report = json.loads(out)
    assert code == 0 and report["selected"] == "2.0.0" and report["error"] is None
    assert [(t["tag"], t["verdict"], t["rank"]) for t in report["tags"]] == [
        ("2.0.0", "selected", 1), ("1.0.0", "lower", 2), ("latest", "unparsable", None)]
    assert report["counts"]["unparsable"] == 1 and sum(report["counts"].values()) == 3
    empty = write(tmp_path / "none.txt", ["# nothing yet"])
    code, out, _ = run(capsys, "images", "test", "--policy", str(rules), "--tags", empty, "-o", "json")
    report = json.loads(out)
    assert code == 1 and report["tags"] == [] and "no tags" in report["error"]


def test_images_test_weighs_no_tag_a_scan_records_invalid(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "p.rules"
    rules.write_text('image policy apps/app {\n  repository app\n  select highest alphabetical\n}\n')
    tags = write(tmp_path / "t.txt", ["a1", "b2", "zz\x1b[31m", "\u00fcber"])
    code, out, err = run(capsys, "images", "test", "--policy", str(rules), "--tags", tags)
    assert code == 0 and out.splitlines()[-1] == "selected: b2"
    assert ('warning: 2 tags are outside the OCI tag grammar and not weighed, as a scan records '
            'them invalid: "zz\\x1b[31m", "\\u00fcber"') in err.splitlines()
    code, out, _ = run(capsys, "images", "test", "--policy", str(rules), "--tags", tags, "-o", "json")
    report = json.loads(out)
    assert report["selected"] == "b2" and sum(report["counts"].values()) == 2
    assert any("outside the OCI tag grammar" in lint for lint in report["lints"])


def test_images_tags_lists_newest_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "s.db")
    first = write(tmp_path / "1.txt", ["6.5.0", "6.5.1"])
    second = write(tmp_path / "2.txt", ["6.5.1", "6.6.0"])
    for tags in (first, second):
        assert run(capsys, "--state", state, "images", "import", "podinfo/podinfo", "--tags", tags,
                   "--repo", HOMELAB)[0] == 0
    code, out, _ = run(capsys, "--state", state, "images", "tags", "podinfo/podinfo", "--all",
                       "-o", "json")
    rows = json.loads(out)
    assert code == 0
    assert rows[0]["tag"] == "6.6.0" and rows[0]["gone_at"] is None
    assert {r["tag"]: r["gone_at"] is not None for r in rows} == {"6.6.0": False, "6.5.1": False,
                                                                   "6.5.0": True}


def test_explain_without_a_decision_says_what_to_run(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--state", str(tmp_path / "s.db"), "explain", "image", "policy",
                       "podinfo/podinfo", "--repo", HOMELAB)
    assert code == 2
    assert "gitward reconcile image policy podinfo/podinfo" in err


def test_a_scan_that_lost_the_deployed_tag_is_not_trusted(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """examples/homelab deploys podinfo 6.5.1; a listing without it keeps the last selection."""
    state = str(tmp_path / "s.db")
    full = write(tmp_path / "full.txt", ["6.5.0", "6.5.1", "6.6.0", "6.7.0"])
    partial = write(tmp_path / "partial.txt", ["6.5.0", "6.6.0", "6.7.0", "6.8.0"])
    for tags in (full, partial):
        run(capsys, "--state", state, "images", "import", "podinfo/podinfo", "--tags", tags,
            "--repo", HOMELAB)
        code, out, err = run(capsys, "--state", state, "reconcile", "image", "policy",
                             "podinfo/podinfo", "--repo", HOMELAB)
    assert code == 1
    assert ("refused: the latest scan of podinfo/podinfo no longer lists 6.5.1, the tag git "
            "deploys") in err and "not trusted; keeping 6.7.0\n" in err
    _, out, _ = run(capsys, "--state", state, "get", "images", "policy", "-n", "podinfo",
                    "--repo", HOMELAB, "-o", "json")
    [row] = json.loads(out)
    assert (row["ready"], row["latest"]) == ("False", "6.7.0")


def test_a_suspended_policy_is_left_alone_whoever_asks(homelab_corpus: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`gitward reconcile image policy` refuses a suspended policy, as `gitward run` skips it."""
    state, repo = str(tmp_path / "s.db"), str(homelab_corpus)
    tags = write(tmp_path / "t.txt", ["2.0.0", "2.0.2"])
    run(capsys, "--state", state, "images", "import", "uptime-kuma/uptime-kuma", "--tags", tags,
        "--repo", repo)
    code, _, err = run(capsys, "--state", state, "suspend", "image", "policy", "uptime-kuma",
                       "-n", "uptime-kuma", "--repo", repo)
    assert code == 0, err
    code, out, err = run(capsys, "--state", state, "reconcile", "image", "policy",
                         "uptime-kuma/uptime-kuma", "--repo", repo)
    assert code == 1
    assert "ImagePolicy uptime-kuma/uptime-kuma is suspended: resume it first" in err
    assert "selected" not in out
    _, out, _ = run(capsys, "--state", state, "sql", "SELECT count(*) AS n FROM policy_decisions",
                    "-o", "json")
    assert json.loads(out) == [{"n": 0}]
