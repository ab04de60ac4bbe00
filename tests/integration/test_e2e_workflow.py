"""The seed's whole workflow through `gitward run`: a tag pushed to a real registry ends up, by way
of a pushed commit, as the image of the Deployment in a real API server; and a registry that
answers 500s for a while loses nothing and holds nothing back once it recovers."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client as kube

from engine.store import decisions as policy_decisions, queries
from engine.store.db import open_store, state_url
from tests.integration.git_env import git
from tests.integration.homelab_env import (
    PODINFO,
    HomelabFactory,
    log_lines,
    podinfo_image,
    wait_for_image,
)
from tests.integration.kube_env import KubeAPI
from tests.integration.registry_env import PagingProxy, RunningRegistry, seed_tags

pytestmark = pytest.mark.slow


def sql(state: str, query: str, *params: object) -> list[sqlite3.Row]:
    """Rows of `query` on the SQLite state file `state` (these tests run on the default store)."""
    with sqlite3.connect(state) as db:
        db.row_factory = sqlite3.Row
        return db.execute(query, params).fetchall()


def test_a_pushed_tag_reaches_the_cluster_through_a_commit(
        homelab: HomelabFactory, open_registry: RunningRegistry, kube_api: KubeAPI,
        kube_client: kube.ApiClient, running: Callable[[list[str], Path], subprocess.Popen[str]],
        tmp_path: Path) -> None:
    lab = homelab(open_registry.host)
    initial = lab.bare.rev("main")
    seed_tags(open_registry.url, lab.image.split("/", 1)[1], ["6.5.1"])
    log = tmp_path / "run.log"
    process = running(lab.gitward("run", "--repo", str(lab.repo), "--workdir", str(lab.workdir),
                                  "--kubeconfig", str(kube_api.kubeconfig),
                                  "--log-format", "json"), log)

    wait_for_image(kube_client, f"{lab.image}:6.5.1", process, log)
    assert lab.bare.rev("main") == initial  # 6.5.1 is what git already deploys: no commit
    seed_tags(open_registry.url, lab.image.split("/", 1)[1], ["6.6.0"])
    wait_for_image(kube_client, f"{lab.image}:6.6.0", process, log)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text()
    stderr = log.read_text()
    assert "Traceback" not in stderr and "internal error" not in stderr
    # the commit: by the automation's author, its message, a trailer naming the decision
    assert lab.bare.subjects("main") == ["Update podinfo image", "Initial commit"]
    pushed = lab.bare.rev("main")
    author = git("--git-dir", str(lab.bare.path), "log", "-1", "--format=%an <%ae>",
                 "main").stdout.strip()
    assert author == "fluxcdbot <fluxcdbot@users.noreply.github.com>"
    trailers = git("--git-dir", str(lab.bare.path), "log", "-1",
                   "--format=%(trailers:key=Gitward-Decision,valueonly)", "main").stdout.split()
    assert len(trailers) == 1, trailers
    assert f"image: {lab.image}:6.6.0 # {{" in lab.bare.read(PODINFO)

    [update] = sql(lab.state, "SELECT * FROM v_image_updates")
    assert (update["commit_sha"], update["path"], update["policy"]) == (pushed, PODINFO,
                                                                       "podinfo/podinfo")
    assert (update["old_value"], update["new_value"]) == (f"{lab.image}:6.5.1",
                                                          f"{lab.image}:6.6.0")
    assert str(update["decision_id"]) == trailers[0]
    [decision] = sql(lab.state, "SELECT selected_tag FROM policy_decisions WHERE id = ?",
                     update["decision_id"])
    assert decision["selected_tag"] == "6.6.0"

    history = sql(lab.state, "SELECT change, revision, status, recorded_in FROM v_object_history "
                  "WHERE object = 'Deployment.apps/podinfo/podinfo' ORDER BY at, recorded_in")
    applied = [(h["change"], h["revision"]) for h in history if h["recorded_in"] == "actions"]
    assert applied[-1] == ("update", f"main@sha1:{pushed}"), history
    assert (f"main@sha1:{initial}" in {revision for _, revision in applied}), history
    [inventory] = [h for h in history if h["recorded_in"] == "cluster_objects"]
    assert (inventory["change"], inventory["revision"]) == ("applied", f"main@sha1:{pushed}")

    lines = log_lines(stderr)
    assert any(line["kind"] == "ImageUpdateAutomation" and line["revision"] == pushed
               for line in lines)
    assert not any(line.get("object") == "ledger/ledger" for line in lines)  # suspended


def test_registry_errors_lose_nothing_and_the_update_proceeds_after(
        homelab: HomelabFactory, open_registry: RunningRegistry, kube_api: KubeAPI,
        kube_client: kube.ApiClient, paging_proxy: Callable[..., PagingProxy]) -> None:
    proxy = paging_proxy(open_registry)
    lab = homelab(proxy.host)
    name = lab.image.split("/", 1)[1]
    seed_tags(open_registry.url, name, ["6.5.1", "6.6.0"],  # one scan lists both: the build
              created={"6.5.1": "2025-11-03T11:30:00Z", "6.6.0": "2025-11-04T08:05:00Z"})  # times tell

    lab.run_once(kube_api)  # scan, decide 6.6.0 and push it; the Kustomization is at the seed
    lab.run_once(kube_api)  # the source sees the push; 6.6.0 is applied
    assert podinfo_image(kube_client) == f"{lab.image}:6.6.0"
    pushed = lab.bare.rev("main")
    with open_store(state_url(str(lab.state))) as store:
        tags_before = queries.tags(store, "podinfo/podinfo", include_gone=True)
        assert {t.tag for t in tags_before} == {"6.5.1", "6.6.0"}

    proxy.faults.server_errors = -1
    seed_tags(open_registry.url, name, ["6.7.0"])
    outage = lab.run_once(kube_api)
    # a slow pass may retry the failed scan after its backoff: every try fails the same way
    failed = [line for line in log_lines(outage.stderr) if line["kind"] == "ImageRepository"]
    assert failed and all(f["outcome"] == "failed" and "500" in f["msg"] for f in failed), failed
    assert any(r.status == 500 for r in proxy.tag_requests())
    assert lab.bare.rev("main") == pushed
    assert podinfo_image(kube_client) == f"{lab.image}:6.6.0"
    with open_store(state_url(str(lab.state))) as store:
        assert queries.tags(store, "podinfo/podinfo", include_gone=True) == tags_before
        selection = policy_decisions.latest_selection(store, "podinfo/podinfo")
        assert selection is not None and selection.selected_tag == "6.6.0"
    decided = sql(lab.state, "SELECT selected_tag, error FROM policy_decisions WHERE policy = ? "
                  "ORDER BY id", "podinfo/podinfo")
    assert {row["selected_tag"] for row in decided if row["selected_tag"]} == {"6.6.0"}
    refused = decided[-1]  # the outage refuses to decide instead of deciding on nothing
    assert refused["selected_tag"] is None and "keeping 6.6.0" in refused["error"], refused

    proxy.faults.server_errors = 0
    lab.run_once(kube_api)  # the scan sees 6.7.0 and the commit is pushed
    lab.run_once(kube_api)  # and applied
    assert podinfo_image(kube_client) == f"{lab.image}:6.7.0"
    assert lab.bare.subjects("main") == ["Update podinfo image", "Update podinfo image",
                                         "Initial commit"]
    news = [row["new_value"] for row in sql(lab.state, "SELECT new_value FROM v_image_updates "
                                                       "ORDER BY committed_at")]
    assert news == [f"{lab.image}:6.6.0", f"{lab.image}:6.7.0"]
    with open_store(state_url(str(lab.state))) as store:
        tags_after = queries.tags(store, "podinfo/podinfo", include_gone=True)
    assert {t.tag for t in tags_after} == {"6.5.1", "6.6.0", "6.7.0"}
    kept = {t.tag: t.first_seen for t in tags_after}
    assert all(kept[t.tag] == t.first_seen for t in tags_before)  # first seen before the outage
