"""`gitward images tags` on tags a real registry lists: in the policy's order (the selected tag
first, excluded tags last), in a table of at most 100 columns that never cuts a tag; and the
policy lints `plan` prints on the same rules."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.integration.registry_env import RunningRegistry, seed_tags
from tests.integration.test_loop import call

BUILDS = ["20260115-0910-sha-1a2b3c4", "20260116-1420-sha-2b3c4d5", "20260117-0930-sha-3c4d5e6",
          "20260117-1650-sha-4d5e6f7"]
SIG = "sha256-9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.sig"


def rules(tmp_path: Path, image: str) -> Path:
    repo = tmp_path / "rules"
    repo.mkdir()
    (repo / "app.rules").write_text(f'''\
image repository apps/app {{
  image    "{image}"
  insecure true
}}

image policy apps/app {{
  repository app
  filter   "^(?P<ts>[0-9]{{8}})-(?P<time>[0-9]{{4}})-sha-[a-f0-9]{{7}}$" extract "$ts$time"
  select   highest alphabetical
}}
''')
    return repo


def test_images_tags_lists_the_ledger_in_the_policys_order(open_registry: RunningRegistry,
                                                           tmp_path: Path) -> None:
    name = f"ledger/{uuid.uuid4().hex[:10]}"
    seed_tags(open_registry.url, name, [*BUILDS, "latest", SIG])
    repo = rules(tmp_path, f"{open_registry.host}/{name}")
    state = str(tmp_path / "state.db")
    scanned = call("--state", state, "reconcile", "image", "repository", "apps/app", "--repo", str(repo))
    assert scanned.returncode == 0, scanned.stderr
    assert "selected 20260117-1650-sha-4d5e6f7" in scanned.stdout

    listed = call("--state", state, "images", "tags", "apps/app", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    order = [(row["tag"], row["rank"], row["verdict"]) for row in json.loads(listed.stdout)]
    assert order == [(BUILDS[3], 1, "selected"), (BUILDS[2], 2, "lower"), (BUILDS[1], 3, "lower"),
                     (BUILDS[0], 4, "lower"), ("latest", None, "filtered"), (SIG, None, "excluded")]
    assert "in the order of ImagePolicy apps/app" in listed.stderr

    table = call("--state", state, "images", "tags", "apps/app")
    lines = table.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines), table.stdout
    assert lines[0].split() == ["RANK", "VERDICT", "FIRST", "SEEN", "LAST", "SEEN", "TAG"]
    assert lines[1].split()[:2] == ["1", "selected"] and lines[1].endswith(BUILDS[3])
    assert lines[-1] == f"    {SIG}"  # too long for the row: whole, under it
    assert lines[-2].split()[0] == "excluded"


def test_plan_prints_the_lints_check_prints(open_registry: RunningRegistry, tmp_path: Path) -> None:
    """The user's policy (order desc, the date without the time) in a plan: both traps said."""
    name = f"ledger/{uuid.uuid4().hex[:10]}"
    seed_tags(open_registry.url, name, BUILDS)
    repo = rules(tmp_path, f"{open_registry.host}/{name}")
    text = (repo / "app.rules").read_text()
    (repo / "app.rules").write_text(
        text.replace('(?P<time>[0-9]{4})', '[0-9]{4}').replace('"$ts$time"', '"$ts"')
            .replace("select   highest alphabetical", "select   lowest alphabetical"))
    (repo / "flux.yaml").write_text('''\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: oldest, namespace: apps}
spec:
  imageRepositoryRef: {name: app}
  policy: {alphabetical: {order: desc}}
''')
    state = str(tmp_path / "state.db")
    planned = call("--state", state, "plan", "--repo", str(repo), "-o", "json")
    assert planned.returncode == 0, planned.stderr
    codes = {(w["code"], w["path"]) for w in json.loads(planned.stdout)["warnings"]}
    assert {("extract-ties", f"{repo}/app.rules"), ("order-desc", f"{repo}/flux.yaml"),
            ("unused-policy", f"{repo}/app.rules"), ("unused-policy", f"{repo}/flux.yaml")} <= codes
    text_plan = call("--state", state, "plan", "--repo", str(repo))
    assert "warning: ImagePolicy apps/app: extract \"$ts\" leaves out digits" in text_plan.stderr
    assert "warning: ImagePolicy apps/oldest: alphabetical order desc selects the LOWEST tag" in text_plan.stderr
