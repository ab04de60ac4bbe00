"""The seed's whole workflow through `gitward run`: a tag pushed to a real registry ends up, by way
of a pushed commit, as the image of the Deployment in a real API server; and a registry that
answers 500s for a while loses nothing and holds nothing back once it recovers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from engine.store import queries
from engine.store.db import open_store, state_url
from tests.conftest import EXAMPLES, ROOT, require
from tests.integration.git_env import BareRepo, git, make_bare_repo
from tests.integration.kube_env import KubeAPI
from tests.integration.registry_env import PagingProxy, RunningRegistry, seed_tags

pytestmark = pytest.mark.slow

PODINFO = "cluster/apps/podinfo/deployment.yaml"
DEADLINE = 90.0
"""How long the loop gets to carry a change through: a bound on waiting, not a timing assert."""


@dataclass(frozen=True)
class Homelab:
    """examples/homelab wired to the test parts: its bare remote, the rules checkout it was made
    from, the image (registry host and repository) podinfo is updated from, and the state file."""

    bare: BareRepo
    repo: Path
    image: str
    state: Path
    workdir: Path

    def gitward(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "engine", "--state", str(self.state), *args]

    def call(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.gitward(*args), check=False, cwd=ROOT, env=environ(),
                              capture_output=True, text=True, timeout=300)

    def run_once(self, kube_api: KubeAPI) -> subprocess.CompletedProcess[str]:
        done = self.call("run", "--once", "--repo", str(self.repo), "--workdir", str(self.workdir),
                         "--kubeconfig", str(kube_api.kubeconfig), "--log-format", "json")
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
        return done


def environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "GITWARD_STATE")}


def replaced(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}: update this test"
    path.write_text(text.replace(old, new))


HomelabFactory = Callable[[str], Homelab]


@pytest.fixture
def homelab(tmp_path: Path) -> HomelabFactory:
    """A factory: examples/homelab, podinfo taken from `registry_host` (plain HTTP) under a
    repository of its own, every interval a second or two, the bare repo made from that; the
    ledger app (its registry is out of reach) suspended in the store."""
    require(shutil.which("git") is not None, "git is not installed (apt-get install git)")

    def make(registry_host: str) -> Homelab:
        seed = tmp_path / "seed"
        shutil.copytree(EXAMPLES / "homelab", seed)
        bare_path = tmp_path / "homelab.git"
        image = f"{registry_host}/e2e/{uuid.uuid4().hex[:10]}"
        apps = seed / "cluster/apps/podinfo"
        replaced(apps / "image-repository.yaml", "  image: ghcr.io/stefanprodan/podinfo\n"
                 "  interval: 5m\n", f"  image: {image}\n  interval: 1s\n  insecure: true\n")
        replaced(apps / "image-update.yaml", "interval: 5m", "interval: 1s")
        replaced(apps / "deployment.yaml", "ghcr.io/stefanprodan/podinfo:6.5.1", f"{image}:6.5.1")
        sync = seed / "cluster/system/flux-system/gotk-sync.yaml"
        replaced(sync, "ssh://git@github.com/example/homelab", bare_path.as_uri())
        replaced(sync, "interval: 1m0s", "interval: 1s")
        replaced(sync, "interval: 10m0s", "interval: 2s")
        lab = Homelab(make_bare_repo(bare_path, seed), seed, image, tmp_path / "state.db",
                      tmp_path / "cache")
        for kind in ("repository", "update"):
            held = lab.call("suspend", "image", kind, "ledger", "-n", "ledger", "--repo", str(seed),
                            "--reason", "ghcr.io is out of reach in the tests")
            assert held.returncode == 0, held.stderr
        return lab

    return make


def podinfo_image(kube_client: kube.ApiClient) -> str | None:
    try:
        deployment = kube.AppsV1Api(kube_client).read_namespaced_deployment("podinfo", "podinfo")
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    pod = deployment.spec.template.spec if deployment.spec else None
    return pod.containers[0].image if pod else None


def wait_for_image(kube_client: kube.ApiClient, want: str, process: subprocess.Popen[str],
                   log: Path) -> None:
    """Poll the API server until podinfo runs `want`; fail (with the loop's log) at the deadline
    or when the loop exits."""
    deadline = time.monotonic() + DEADLINE
    while podinfo_image(kube_client) != want:
        if process.poll() is not None:
            pytest.fail(f"gitward run exited with {process.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"podinfo did not reach {want} within {DEADLINE:g}s (it runs "
                        f"{podinfo_image(kube_client)}):\n{log.read_text()[-6000:]}")
        time.sleep(0.5)


@pytest.fixture
def running() -> Iterator[Callable[[list[str], Path], subprocess.Popen[str]]]:
    """Starts `gitward run` with stderr to a file; every process started is stopped after."""
    started: list[subprocess.Popen[str]] = []

    def start(argv: list[str], log: Path) -> subprocess.Popen[str]:
        with log.open("w") as out:
            process = subprocess.Popen(argv, cwd=ROOT, env=environ(), stdout=subprocess.DEVNULL,
                                       stderr=out, text=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def sql(state: Path, query: str, *params: object) -> list[sqlite3.Row]:
    with sqlite3.connect(state) as db:
        db.row_factory = sqlite3.Row
        return db.execute(query, params).fetchall()


def log_lines(text: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


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
    seed_tags(open_registry.url, name, ["6.5.1", "6.6.0"])

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
    [failed] = [line for line in log_lines(outage.stderr) if line["kind"] == "ImageRepository"]
    assert failed["outcome"] == "failed" and "500" in failed["msg"], failed
    assert any(r.status == 500 for r in proxy.tag_requests())
    assert lab.bare.rev("main") == pushed
    assert podinfo_image(kube_client) == f"{lab.image}:6.6.0"
    with open_store(state_url(str(lab.state))) as store:
        assert queries.tags(store, "podinfo/podinfo", include_gone=True) == tags_before
        selection = queries.latest_selection(store, "podinfo/podinfo")
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
