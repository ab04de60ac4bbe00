"""The user's incident replayed scan by scan: an `order: desc` policy never rolls git back in silence.

The homelab corpus deploys bluesync 20260117-0254-sha-290e790 under an ImagePolicy written
`alphabetical: order: desc`, which Flux (and gitward's evaluator, faithfully) resolves to the
OLDEST build. The registry's history is replayed as the ledger would have recorded it: one
`images import` per day from 3 Nov 2025 to 17 Jan 2026, each with every tag pushed so far.
ghcr.io is out of reach here, so the ledger's first sightings are the chronology.
"""

from __future__ import annotations

import json
import random
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from engine.cli import main

DEPLOYED = "20260117-0254-sha-290e790"
DEPLOYMENT = "cluster/apps/field-theories/bluesync-deployment.yaml"
POLICY = "cluster/apps/field-theories/bluesync-image-policy.yaml"
SITE = "20260205-1747-sha-1a34b3e"  # what git deploys of the corpus's other marked image


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def daily_builds(first: date, last: date, seed: int = 11) -> list[list[str]]:
    """One or two builds a day (`YYYYMMDD-HHMM-sha-xxxxxxx`, with its `sha-xxxxxxx` twin),
    the last day's last build being the one git deploys."""
    rng = random.Random(seed)
    days = []
    day = first
    while day <= last:
        hours = sorted(rng.sample(range(6, 23), rng.choice((1, 2))))
        builds = [f"{day:%Y%m%d}-{h:02d}{rng.randrange(60):02d}-sha-{rng.getrandbits(28):07x}"
                  for h in hours]
        days.append(builds)
        day += timedelta(days=1)
    days[-1][-1] = DEPLOYED
    return days


def replay(capsys: pytest.CaptureFixture[str], state: str, repo: Path, tmp: Path,
           days: list[list[str]]) -> list[str]:
    """Import the cumulative tag list of each day; returns every build, oldest first."""
    pushed: list[str] = []
    for number, builds in enumerate(days):
        pushed += builds
        listed = tmp / f"day-{number:03d}.txt"
        listed.write_text("".join(f"{t}\n{'sha-' + t[-7:]}\n" for t in pushed))
        code, _, err = run(capsys, "--state", state, "images", "import",
                           "field-theories/bluesync", "--tags", str(listed), "--repo", str(repo))
        assert code == 0, err
    site = tmp / "site.txt"  # the other marked policy is known and current, not unknown
    site.write_text(f"{SITE}\n")
    code, _, err = run(capsys, "--state", state, "images", "import",
                       "field-theories/field-theories", "--tags", str(site), "--repo", str(repo))
    assert code == 0, err
    return pushed


def test_order_desc_holds_the_rollback_on_every_path_and_says_why(
        homelab_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "homelab"
    shutil.copytree(homelab_corpus, repo)
    state = str(tmp_path / "state.db")
    builds = replay(capsys, state, repo, tmp_path, daily_builds(date(2025, 11, 3), date(2026, 1, 17)))
    oldest = builds[0]
    assert oldest.startswith("20251103-") and builds[-1] == DEPLOYED

    code, out, err = run(capsys, "--state", state, "plan", "--repo", str(repo), "--offline")
    assert code == 0, err
    assert oldest not in out and "no actions: every marked value is current" in out
    [held] = [line for line in err.splitlines() if line.startswith("held: ")]
    assert held.startswith(f"held: {DEPLOYMENT}:27  field-theories/bluesync  rollback: "
                           f"the ledger first saw {oldest} at ")
    assert f", before {DEPLOYED}, the image git deploys (" in held
    assert ": a rollback; the policy selects the LOWEST value (Flux: order desc)" in held

    code, out, _ = run(capsys, "--state", state, "plan", "--repo", str(repo), "--offline",
                       "-o", "json")
    report = json.loads(out)
    assert report["actions"] == []
    [gate] = report["gates"]
    assert (gate["gate"], gate["current"], gate["proposed"]) == ("rollback", DEPLOYED, oldest)

    code, out, err = run(capsys, "--state", state, "images", "check", "--repo", str(repo),
                         "--offline", "--exit-code")
    assert code == 0 and oldest not in out and "rollback: " in err

    before = (repo / DEPLOYMENT).read_bytes()
    for _ in range(2):  # the second pass holds it again, and says nothing new
        code, out, err = run(capsys, "--state", state, "images", "update", "--repo", str(repo),
                             "--offline", "--no-commit")
        assert code == 0 and "no updates" in out and "rollback: " in err
    assert (repo / DEPLOYMENT).read_bytes() == before

    code, out, _ = run(capsys, "--state", state, "explain", "image", "policy",
                       "field-theories/bluesync", "--repo", str(repo))
    assert code == 0
    assert f"Not applied to git: rollback: the ledger first saw {oldest}" in out
    assert f"Selected {oldest}" in out

    code, out, _ = run(capsys, "--state", state, "events", "--for",
                       "ImagePolicy/field-theories/bluesync", "-o", "json")
    events = [json.loads(line) for line in out.splitlines()]
    warnings = [e for e in events if e["reason"] == "UpdateHeld"]
    assert len(warnings) == 1 and warnings[0]["severity"] == "warning"
    assert warnings[0]["message"].startswith(f"{DEPLOYED} -> {oldest} held ({DEPLOYMENT}:27): "
                                             "rollback: ")


def test_order_asc_and_a_newer_build_is_planned(homelab_corpus: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "homelab"
    shutil.copytree(homelab_corpus, repo)
    policy = repo / POLICY
    policy.write_text(policy.read_text().replace("order: desc", "order: asc"))
    state = str(tmp_path / "state.db")
    days = daily_builds(date(2026, 1, 3), date(2026, 1, 17))
    days.append(["20260118-0912-sha-6c1d2e3"])
    replay(capsys, state, repo, tmp_path, days)

    code, out, err = run(capsys, "--state", state, "plan", "--repo", str(repo), "--offline",
                         "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["gates"] == []
    [action] = report["actions"]
    assert [(f["path"], f["old"], f["new"]) for f in action["files"]] == [(
        DEPLOYMENT, f"ghcr.io/t-eckert/field-theories/bluesync:{DEPLOYED}",
        "ghcr.io/t-eckert/field-theories/bluesync:20260118-0912-sha-6c1d2e3")]
