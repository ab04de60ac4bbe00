"""A field gitward reads and does not act on is said on every path: `check`, `plan`, and the
events and log of `gitward run` (once per change, not once per interval)."""

from __future__ import annotations

import json

from engine.reconcile.notices import CLEARED, IGNORED
from engine.store import queries
from engine.store.db import open_store, state_url
from tests.integration.homelab_env import Homelab, HomelabFactory, replaced
from tests.integration.registry_env import RunningRegistry

WARNING = ("warning: spec.provider: gitward gets no aws workload identity: gitward logs in with "
           "the pull secret this object names (read from the cluster), else with docker's config.json")


def run_once(lab: Homelab) -> list[dict[str, str]]:
    done = lab.call("run", "--once", "--repo", str(lab.repo), "--workdir", str(lab.workdir),
                    "--log-format", "json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]


def said(lines: list[dict[str, str]]) -> list[str]:
    return [line["msg"] for line in lines if line.get("reason") == IGNORED]


def test_provider_aws_is_said_by_check_plan_and_once_by_run(
        homelab: HomelabFactory, open_registry: RunningRegistry) -> None:
    lab = homelab(open_registry.host)
    manifest = lab.repo / "cluster/apps/podinfo/image-repository.yaml"
    replaced(manifest, "  insecure: true\n", "  insecure: true\n  provider: aws\n")
    line = manifest.read_text().splitlines().index("  provider: aws") + 1
    where = f"image-repository.yaml:{line}:13: "

    check = lab.call("check", "--repo", str(lab.repo))
    assert where + WARNING in check.stdout + check.stderr
    plan = lab.call("plan", "--repo", str(lab.repo), "--offline")
    assert where + WARNING in plan.stderr

    first, again = run_once(lab), run_once(lab)
    [logged] = said(first)
    assert logged.endswith(where + WARNING.removeprefix("warning: "))
    assert said(again) == []
    with open_store(state_url(lab.state)) as store:
        events = [e for e in queries.list_events(store, object_kind="ImageRepository",
                                                 object_name="podinfo/podinfo")
                  if e.reason == IGNORED]
    [event] = events
    assert (event.severity, event.message) == (queries.EventSeverity.WARNING, logged)

    replaced(manifest, "  provider: aws\n", "")
    assert said(run_once(lab)) == [CLEARED[IGNORED]]
    with open_store(state_url(lab.state)) as store:
        last = queries.latest_event(store, object_kind="ImageRepository",
                                    object_name="podinfo/podinfo", reason=IGNORED)
    assert last is not None and (last.severity, last.message) == (queries.EventSeverity.INFO, CLEARED[IGNORED])
