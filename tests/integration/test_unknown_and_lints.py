"""Unknown is never "current", and the lints are said on every path: examples/homelab against a
real registry (through a proxy that can fail every request) and a real bare git repository.

- `plan` and `images check` with the registry down list the unknown policy and exit 1; once
  the registry answers, the same commands plan the update and exit 0.
- `gitward run --once`, three times with nothing to do: `get images update` shows the last run,
  Ready, and the count; an unknown policy and each lint are one event (and one log line), not
  three; a lint that is fixed is said to be gone.
- `get images policy` PREVIOUS is the tag before the last change.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from engine.store import queries
from engine.store.db import open_store, state_url
from tests.integration.homelab_env import Homelab, HomelabFactory, log_lines
from tests.integration.registry_env import PagingProxy, RunningRegistry, seed_tags

APP = "cluster/apps/podinfo"
OLDEST = """\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: oldest
  namespace: podinfo
spec:
  imageRepositoryRef:
    name: podinfo
  filterTags:
    pattern: '^(?P<ts>[0-9]{8})-[0-9]{4}$'
    extract: '$ts'
  policy:
    alphabetical:
      order: desc
"""
"""A policy with the user's two traps (order desc, an extract that ties a day's builds), which
no marker uses."""


def run_once(lab: Homelab) -> list[dict[str, str]]:
    """One pass of `gitward run` without a cluster (Kustomizations are left out)."""
    done = lab.call("run", "--once", "--repo", str(lab.repo), "--workdir", str(lab.workdir),
                    "--log-format", "json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return log_lines(done.stderr)


def events(lab: Homelab, kind: str, name: str, reason: str) -> list[queries.Event]:
    with open_store(state_url(lab.state)) as store:
        found = queries.list_events(store, object_kind=kind, object_name=name, limit=1000)
    return [e for e in found if e.reason == reason]


def test_plan_and_images_check_say_unknown_while_the_registry_is_down(
        homelab: HomelabFactory, open_registry: RunningRegistry,
        paging_proxy: Callable[..., PagingProxy]) -> None:
    proxy = paging_proxy(open_registry)
    lab = homelab(proxy.host)
    seed_tags(open_registry.url, lab.image.split("/", 1)[1], ["6.5.1", "6.6.0"],
              created={"6.5.1": "2025-11-01T10:00:00Z", "6.6.0": "2025-12-01T10:00:00Z"})
    proxy.faults.server_errors = -1  # every registry request answers 500

    planned = lab.call("plan", "--repo", str(lab.repo))
    assert planned.returncode == 1, planned.stderr
    assert "every marked value is current" not in planned.stdout
    assert planned.stdout.strip() == ("no actions; 1 marked policy is unknown: its markers are "
                                      "not known to be current")
    [unknown] = [line for line in planned.stderr.splitlines() if line.startswith("unknown: ")]
    assert unknown.startswith(f"unknown: {APP}/deployment.yaml:20  podinfo/podinfo  the latest "
                              "scan of podinfo/podinfo failed: ")
    as_json = lab.call("plan", "--repo", str(lab.repo), "-o", "json")
    assert as_json.returncode == 1
    [entry] = json.loads(as_json.stdout)["unknown"]
    assert (entry["policy"], entry["path"], entry["line"]) == ("podinfo/podinfo",
                                                               f"{APP}/deployment.yaml", 20)
    assert entry["reason"].startswith("the latest scan of podinfo/podinfo failed: ")
    checked = lab.call("images", "check", "--repo", str(lab.repo))
    assert checked.returncode == 1
    assert "no updates; 1 marked policy is unknown" in checked.stderr
    checked = lab.call("images", "check", "--repo", str(lab.repo), "-o", "json")
    assert checked.returncode == 1, checked.stderr
    report = json.loads(checked.stdout)
    assert report["actions"] == [] and report["unknown"][0]["policy"] == "podinfo/podinfo"
    applied = lab.call("apply", "--repo", str(lab.repo), "--workdir", str(lab.workdir),
                       "-o", "json")
    assert applied.returncode == 0, applied.stderr  # it acts on what it knows: nothing here
    report = json.loads(applied.stdout)
    assert report["actions"] == [] and report["unknown"][0]["policy"] == "podinfo/podinfo"

    proxy.faults.server_errors = 0
    planned = lab.call("plan", "--repo", str(lab.repo))
    assert planned.returncode == 0, planned.stderr
    assert f"+          image: {lab.image}:6.6.0 # {{" in planned.stdout
    assert "unknown" not in planned.stderr
    decided = lab.call("reconcile", "image", "repository", "podinfo/podinfo", "--repo", str(lab.repo))
    assert decided.returncode == 0, decided.stderr  # 6.6.0 is recorded as the selection

    proxy.faults.server_errors = -1  # down again: the last trusted selection is still planned
    planned = lab.call("plan", "--repo", str(lab.repo))
    assert planned.returncode == 1
    assert "1 marked policy is unknown" in planned.stdout
    assert f"+          image: {lab.image}:6.6.0 # {{" in planned.stdout
    assert "; keeping 6.6.0" in planned.stderr


def test_run_records_its_runs_and_says_unknown_and_lints_once(
        homelab: HomelabFactory, open_registry: RunningRegistry,
        paging_proxy: Callable[..., PagingProxy]) -> None:
    proxy = paging_proxy(open_registry)
    lab = homelab(proxy.host)
    seed_tags(open_registry.url, lab.image.split("/", 1)[1], ["6.5.1"])  # what git deploys
    (lab.repo / APP / "oldest.yaml").write_text(OLDEST)
    proxy.faults.server_errors = -1

    passes = [run_once(lab) for _ in range(3)]

    said = [[line for line in lines if line.get("reason") == "PoliciesUnknown"] for lines in passes]
    assert [len(lines) for lines in said] == [1, 0, 0]
    assert said[0][0]["level"] == "warning"
    assert said[0][0]["msg"].startswith("ImagePolicy podinfo/podinfo is unknown: the latest scan")
    automation = [[line for line in lines if line["kind"] == "ImageUpdateAutomation"
                   and "outcome" in line] for lines in passes]
    assert all(line["outcome"] == "ok" and line["msg"] == "no updates; unknown: podinfo/podinfo"
               for lines in automation for line in lines)
    [unknown] = events(lab, "ImageUpdateAutomation", "podinfo/podinfo", "PoliciesUnknown")
    assert unknown.severity is queries.EventSeverity.WARNING
    lints = [[line for line in lines if line.get("reason") == "Lints"] for lines in passes]
    assert [len(lines) for lines in lints] == [3, 0, 0]  # order desc and ties, unused policy
    [of_policy] = events(lab, "ImagePolicy", "podinfo/oldest", "Lints")
    assert "alphabetical order desc selects the LOWEST tag" in of_policy.message
    assert 'extract "$ts" leaves out digits the pattern matches (4 digits)' in of_policy.message
    [of_automation] = events(lab, "ImageUpdateAutomation", "podinfo/podinfo", "Lints")
    assert of_automation.message.endswith("ImagePolicy podinfo/oldest is not used by any marker")

    got = lab.call("get", "images", "update", "-n", "podinfo", "--repo", str(lab.repo),
                   "-o", "json")
    [row] = json.loads(got.stdout)
    assert (row["ready"], row["message"]) == ("True", "no updates; unknown: podinfo/podinfo (3 runs)")
    assert row["last"] is not None

    proxy.faults.server_errors = 0
    (lab.repo / APP / "oldest.yaml").unlink()
    fixed = run_once(lab)
    assert [line["msg"] for line in fixed if line.get("reason") == "PoliciesUnknown"] == [
        "every marked policy is known again"]
    assert [line["msg"] for line in fixed if line.get("reason") == "Lints"] == ["no lints any more"]
    got = lab.call("get", "images", "update", "-n", "podinfo", "--repo", str(lab.repo), "-o", "json")
    [row] = json.loads(got.stdout)
    assert (row["ready"], row["message"]) == ("True", "no updates (4 runs)")
    assert len(events(lab, "ImageUpdateAutomation", "podinfo/podinfo", "PoliciesUnknown")) == 2


def test_previous_is_the_tag_before_the_last_change(
        homelab: HomelabFactory, open_registry: RunningRegistry) -> None:
    lab = homelab(open_registry.host)
    name = lab.image.split("/", 1)[1]
    for tags in (["6.5.1"], ["6.6.0"], []):  # a new tag, then a scan that changes nothing
        seed_tags(open_registry.url, name, tags)
        done = lab.call("reconcile", "image", "repository", "podinfo/podinfo", "--repo",
                        str(lab.repo))
        assert done.returncode == 0, done.stderr

    got = lab.call("get", "images", "policy", "-n", "podinfo", "--repo", str(lab.repo), "-o", "json")
    [row] = json.loads(got.stdout)
    assert (row["latest"], row["previous"]) == ("6.6.0", "6.5.1")
    table = lab.call("get", "images", "policy", "-n", "podinfo", "--repo", str(lab.repo))
    assert table.stdout.splitlines()[1].split()[:3] == ["podinfo", "6.6.0", "6.5.1"]
