"""`gitward watch` as a user runs it: a subprocess on a copy of examples/homelab, real files,
a real SQLite store with imported tags and a recorded inventory, `-o json` lines read as they come;
with `--cluster` and `--apply`, a small checkout against the session's real kube-apiserver.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import urllib3
from kubernetes import client as kube

from engine.cli import main
from engine.errors import Problems
from engine.evaluate.apply import checksum, cluster_scoped, prepare
from engine.model import ClusterObject, Kustomization, Manifest, ObjectId, SourceRef
from engine.observe.cluster import connect
from engine.reconcile.build import build_kustomization
from engine.reconcile.cluster import sync_kustomization
from engine.reconcile.watch import (
    compare_inventory,
    ignore_rules,
    is_ignored,
    is_noise,
    worktree_revision,
)
from engine.rules.ignore import IgnoreRules
from engine.rules.load import load_repo
from engine.store.db import open_store, state_url
from engine.store.inventory import list_inventory, record_applied
from engine.store.queries import list_events
from tests.conftest import EXAMPLES, ROOT
from tests.integration.kube_env import KubeAPI, free_port

DEPLOYMENT = "cluster/apps/podinfo/deployment.yaml"
RULES = "cluster/apps/ledger/ledger.rules"
KS = "flux-system/flux-system"
OLD_IMAGE = "ghcr.io/stefanprodan/podinfo:6.5.1"
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.6.0"
STALE = ObjectId("", "ConfigMap", "podinfo", "old-settings")
LINE_DEADLINE = 60.0
"""Seconds to wait for the next plan before calling the watcher hung (not a timing assert)."""



@dataclass
class Watcher:
    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    stderr: Path

    def next_plan(self, accept: Callable[[dict[str, Any]], bool] = lambda _: True) -> dict[str, Any]:
        """The next JSON line that `accept`s (earlier ones are plans of intermediate saves)."""
        while True:
            try:
                line = self.lines.get(timeout=LINE_DEADLINE)
            except queue.Empty:
                pytest.fail(f"no plan within {LINE_DEADLINE}s; stderr:\n{self.stderr.read_text()}")
            assert line, f"the watcher exited ({self.process.poll()}):\n{self.stderr.read_text()}"
            report: dict[str, Any] = json.loads(line)
            if accept(report):
                return report


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    """A copy of examples/homelab whose podinfo already runs the newest 6.x, and a store with
    podinfo's tags and the inventory a sync of this copy would have recorded (plus one object
    that has since left the source)."""
    repo = tmp_path / "homelab"
    shutil.copytree(EXAMPLES / "homelab", repo)
    edit(repo / DEPLOYMENT, OLD_IMAGE, NEW_IMAGE)
    state = str(tmp_path / "state.db")
    for day, listed in enumerate(("6.5.1\n", "6.5.1\n6.5.2\n6.6.0\n7.0.0\n")):  # newer: seen later
        tags = tmp_path / f"tags-{day}.txt"
        tags.write_text(listed)
        assert main(["--state", state, "images", "import", "podinfo/podinfo", "--tags", str(tags),
                     "--repo", str(repo)]) == 0
    ks = Kustomization("flux-system", SourceRef("flux-system", "flux-system"), path="./cluster",
                       prune=True)
    now = datetime.now(UTC)
    entries = [ClusterObject(KS, m.id, m.version, "main@sha1:0", checksum(m), now)
               for m in prepare(build_kustomization(repo, ks).manifests, ks)]
    entries.append(ClusterObject(KS, STALE, "v1", "main@sha1:0", "sha256:0", now))
    with open_store(state_url(state)) as store:
        record_applied(store, entries)
    return repo, state


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Watcher]]:
    started: list[Watcher] = []

    def run(repo: Path, state: str, *extra: str) -> Watcher:
        err = tmp_path / f"watch-{len(started)}.err"
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "--state", state, "watch", str(repo), "-o", "json",
             "--debounce", "0.05", *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=err.open("w"), text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=pump, daemon=True).start()
        watcher = Watcher(process, lines, err)
        started.append(watcher)
        return watcher

    yield run
    for watcher in started:
        if watcher.process.poll() is None:
            watcher.process.kill()
            watcher.process.wait()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def podinfo_update(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [u for u in report["updates"] if u["policy"] == "podinfo/podinfo"]


def test_watch_replans_on_save_reports_errors_and_keeps_running(
        checkout: tuple[Path, str], start: Callable[..., Watcher]) -> None:
    repo, state = checkout
    watcher = start(repo, state)

    first = watcher.next_plan()
    assert first["ok"] and first["trigger"] == [] and podinfo_update(first) == []
    assert first["objects"] == [{"kustomization": KS, "created": [], "changed": [],
                                 "pruned": [str(STALE)], "released": [], "unchanged": 20,
                                 "against": "store", "drift": []}]
    assert first["applied"] == []

    (repo / "cluster/apps/podinfo/.deployment.yaml.swp").write_bytes(b"\0vim swap")
    (repo / "cluster/apps/podinfo/deployment.yaml~").write_text("backup")
    edit(repo / DEPLOYMENT, NEW_IMAGE, OLD_IMAGE)
    planned = watcher.next_plan(lambda r: DEPLOYMENT in r["trigger"])
    assert planned["trigger"] == [DEPLOYMENT]  # swap and backup files are no trigger
    assert planned["ok"] and planned["written"] == []
    assert podinfo_update(planned) == [{"path": DEPLOYMENT, "line": 20, "old": OLD_IMAGE,
                                        "new": NEW_IMAGE, "policy": "podinfo/podinfo"}]
    assert planned["objects"][0]["changed"] == ["Deployment.apps/podinfo/podinfo"]
    assert OLD_IMAGE in (repo / DEPLOYMENT).read_text()  # without --write nothing is written

    rules = repo / RULES
    good = rules.read_text()
    rules.write_text(good + "\nimage policy ledger/broken {\n  repository ledger\n")
    broken = watcher.next_plan(lambda r: RULES in r["trigger"])
    # one broken file blocks nothing else: podinfo's update is still planned
    assert not broken["ok"] and podinfo_update(broken) == podinfo_update(planned)
    error = broken["errors"][0]
    assert error["path"].endswith(RULES) and error["line"] >= good.count("\n") + 1
    assert error["column"] >= 1 and error["message"]
    assert watcher.process.poll() is None

    rules.write_text(good)
    fixed = watcher.next_plan(lambda r: RULES in r["trigger"])
    assert fixed["ok"] and fixed["errors"] == [] and len(podinfo_update(fixed)) == 1

    watcher.process.send_signal(signal.SIGINT)
    assert watcher.process.wait(timeout=LINE_DEADLINE) == 130
    assert "interrupted" in watcher.stderr.read_text()
    assert "Traceback" not in watcher.stderr.read_text()


def test_watch_write_applies_marker_updates_to_the_working_tree(
        checkout: tuple[Path, str], start: Callable[..., Watcher]) -> None:
    repo, state = checkout
    edit(repo / DEPLOYMENT, NEW_IMAGE, OLD_IMAGE)
    before = (repo / DEPLOYMENT).read_text()
    watcher = start(repo, state, "--write")

    first = watcher.next_plan()
    assert first["written"] == [DEPLOYMENT] and len(podinfo_update(first)) == 1
    assert (repo / DEPLOYMENT).read_text() == before.replace(OLD_IMAGE, NEW_IMAGE, 1)
    again = watcher.next_plan(lambda r: DEPLOYMENT in r["trigger"])  # its own write, re-planned
    assert again["ok"] and podinfo_update(again) == [] and again["written"] == []
    assert again["objects"][0]["changed"] == []
    assert not [p for p in repo.rglob("*.gitward")]  # no temporary file left behind
    watcher.process.send_signal(signal.SIGINT)
    assert watcher.process.wait(timeout=LINE_DEADLINE) == 130


@pytest.mark.parametrize("rel, noise", [
    (".git/index", True), (".git", True), ("sub/.git/HEAD", True),
    ("cluster/.deployment.yaml.swp", True), ("cluster/.deployment.yaml.swx", True),
    ("cluster/deployment.yaml~", True), ("cluster/4913", True), ("cluster/.#deployment.yaml", True),
    ("cluster/.deployment.yaml.k3j2.gitward", True),
    ("cluster/deployment.yaml", False), ("cluster/apps/ledger.rules", False),
    ("cluster/.gitkeep.yaml", False), ("cluster/14913", False),
])
def test_noise_is_version_control_and_editor_scratch(rel: str, noise: bool) -> None:
    assert is_noise(rel) is noise


def test_ignore_rules_are_source_controllers_with_nested_sourceignore(tmp_path: Path) -> None:
    (tmp_path / "apps" / "drafts").mkdir(parents=True)
    (tmp_path / "apps" / ".sourceignore").write_text("drafts/\n*.md\n")
    rules = ignore_rules(tmp_path)
    assert is_ignored(rules, "apps/drafts/new.yaml")
    assert is_ignored(rules, "apps/README.md")
    # a .sourceignore replaces Flux's default exclusions (source-controller keeps only .git & co)
    assert not is_ignored(rules, ".github/workflows/ci.yaml")
    assert is_ignored(ignore_rules(tmp_path / "apps" / "drafts"), ".github/workflows/ci.yaml")
    assert is_ignored(rules, ".git/config")
    assert not is_ignored(rules, "apps/app.yaml")
    assert not is_ignored(rules, "README.md")  # the nested file applies below apps/ only
    assert not is_ignored(IgnoreRules.of(), "apps/drafts/new.yaml")


def test_compare_inventory_by_identity_and_checksum() -> None:
    ks = Kustomization("apps", SourceRef("flux-system"), prune=False)
    config: dict[str, object] = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "settings", "namespace": "apps"}, "data": {"a": "1"}}
    scoped: dict[str, object] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
              "metadata": {"name": "reader", "namespace": "apps"}, "rules": []}
    now = datetime.now(UTC)
    kept, role = prepare([Manifest(config), Manifest(scoped)], ks)
    role_id = ObjectId("rbac.authorization.k8s.io", "ClusterRole", "", "reader")
    recorded = (ClusterObject("flux-system/apps", kept.id, "v1", "r", checksum(kept), now),
                ClusterObject("flux-system/apps", role_id, "v1", "r",
                              checksum(cluster_scoped(role)), now),
                ClusterObject("flux-system/apps", STALE, "v1", "r", "sha256:0", now))
    same = compare_inventory(ks, [Manifest(config), Manifest(scoped)], recorded)
    assert (same.created, same.changed, same.pruned, same.released, same.unchanged) == (
        (), (), (), (STALE,), 2)
    edited: dict[str, object] = {**config, "data": {"a": "2"}}
    renamed: dict[str, object] = {**config, "metadata": {"name": "settings-v2", "namespace": "apps"}}
    moved = compare_inventory(Kustomization("apps", SourceRef("flux-system"), prune=True),
                              [Manifest(edited), Manifest(renamed)], recorded)
    assert moved.changed == (kept.id,)
    assert moved.created == (ObjectId("", "ConfigMap", "apps", "settings-v2"),)
    assert moved.pruned == (STALE, role_id)  # reverse apply order, as a sync prunes and moved.released == ()


# --cluster and --apply -----------------------------------------------------------------------

DEV = "flux-system/dev"
SETTINGS = "app/settings.yaml"


def dev_checkout(root: Path, namespace: str) -> Path:
    """A checkout with two Kustomizations into `namespace`: `dev` (./app, pruning) and `paused`
    (./paused, suspended), and one ConfigMap in each path."""
    (root / "app").mkdir(parents=True)
    (root / "paused").mkdir()
    (root / "flux.yaml").write_text(dedent(f"""\
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata:
          name: dev
          namespace: flux-system
        spec:
          interval: 1m0s
          ref:
            branch: main
          url: https://git.example.com/dev.git
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: dev
          namespace: flux-system
        spec:
          interval: 10m0s
          path: ./app
          prune: true
          targetNamespace: {namespace}
          sourceRef:
            kind: GitRepository
            name: dev
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: paused
          namespace: flux-system
        spec:
          interval: 10m0s
          path: ./paused
          prune: false
          suspend: true
          targetNamespace: {namespace}
          sourceRef:
            kind: GitRepository
            name: dev
        """))
    (root / SETTINGS).write_text(config_map("settings", "blue"))
    (root / "paused/held.yaml").write_text(config_map("held", "grey"))
    return root


def config_map(name: str, color: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  color: {color}\n"


def by_kustomization(report: dict[str, Any], ref: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [o for o in report["objects"] if o["kustomization"] == ref]
    assert len(found) == 1, report["objects"]
    return found[0]


def live_color(kube_client: kube.ApiClient, namespace: str, name: str) -> str | None:
    try:
        found = kube.CoreV1Api(kube_client).read_namespaced_config_map(name, namespace)
    except kube.ApiException as err:
        if err.status == 404:
            return None
        raise
    assert found.data is not None
    color: str = found.data["color"]
    return color


def test_watch_cluster_shows_live_drift_and_writes_nothing(
        kube_api: KubeAPI, kube_client: kube.ApiClient, kube_namespace: str, tmp_path: Path,
        start: Callable[..., Watcher]) -> None:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    repo = dev_checkout(tmp_path / "dev", kube_namespace)
    (repo / "app/legacy.yaml").write_text(config_map("legacy", "white"))
    state = str(tmp_path / "state.db")
    problems = Problems()
    rules = load_repo(repo, problems).rules
    [dev] = [ks for ks in rules.kustomizations if ks.name == "dev"]
    with open_store(state_url(state)) as store, connect(kube_api.kubeconfig) as cluster:
        synced = sync_kustomization(store, dev, build_kustomization(repo, dev).manifests,
                                    "main@sha1:0", client=cluster, now=datetime.now(UTC))
    assert synced.ok, synced.summary()
    watcher = start(repo, state, "--cluster", "--kubeconfig", str(kube_api.kubeconfig))

    first = watcher.next_plan()
    assert first["ok"], first["errors"]
    assert by_kustomization(first, DEV) == {
        "kustomization": DEV, "created": [], "changed": [], "pruned": [], "released": [],
        "unchanged": 2, "against": "cluster", "drift": []}
    assert by_kustomization(first, "flux-system/paused")["created"] == [
        f"ConfigMap/{kube_namespace}/held"]  # suspended, yet its diff is shown
    assert first["applied"] == []

    kube.CoreV1Api(kube_client).patch_namespaced_config_map(
        "settings", kube_namespace, {"data": {"color": "red"}}, field_manager="kubectl-edit")
    (repo / "app/legacy.yaml").unlink()
    (repo / "app/extra.yaml").write_text(config_map("extra", "green"))
    planned = watcher.next_plan(lambda r: r["ok"] and by_kustomization(r, DEV)["created"]
                                and by_kustomization(r, DEV)["pruned"])
    diff = by_kustomization(planned, DEV)
    assert diff["created"] == [f"ConfigMap/{kube_namespace}/extra"]
    assert diff["changed"] == [f"ConfigMap/{kube_namespace}/settings"]
    assert diff["pruned"] == [f"ConfigMap/{kube_namespace}/legacy"]  # from the store's inventory
    [drift] = diff["drift"]
    assert drift["object"] == f"ConfigMap/{kube_namespace}/settings"
    assert {"path": "data.color", "old": "red", "new": "blue"} in drift["diff"]
    assert planned["applied"] == []
    assert live_color(kube_client, kube_namespace, "settings") == "red"  # only dry-runs
    assert live_color(kube_client, kube_namespace, "extra") is None
    assert live_color(kube_client, kube_namespace, "legacy") == "white"
    watcher.process.send_signal(signal.SIGINT)
    assert watcher.process.wait(timeout=LINE_DEADLINE) == 130
    assert "Traceback" not in watcher.stderr.read_text()


def test_watch_apply_syncs_the_working_tree_on_every_save_and_records_it(
        kube_api: KubeAPI, kube_client: kube.ApiClient, kube_namespace: str, tmp_path: Path,
        start: Callable[..., Watcher]) -> None:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    repo = dev_checkout(tmp_path / "dev", kube_namespace)
    state = str(tmp_path / "state.db")  # does not exist yet: --apply creates it
    watcher = start(repo, state, "--apply", "--kubeconfig", str(kube_api.kubeconfig))

    first = watcher.next_plan()
    assert first["ok"], first["errors"]
    assert by_kustomization(first, DEV)["created"] == [f"ConfigMap/{kube_namespace}/settings"]
    applied = {a["kustomization"]: a for a in first["applied"]}
    assert applied["flux-system/paused"]["skipped"] and applied["flux-system/paused"]["sync"] is None
    dev = applied[DEV]
    assert dev["ok"] and dev["revision"].startswith("worktree@sha256:")
    assert f"ConfigMap/{kube_namespace}/settings created" in dev["summary"]
    assert live_color(kube_client, kube_namespace, "settings") == "blue"
    assert live_color(kube_client, kube_namespace, "held") is None  # suspended: not applied

    edit(repo / SETTINGS, "blue", "green")
    second = watcher.next_plan(lambda r: SETTINGS in r["trigger"])
    assert second["ok"], second["errors"]
    assert by_kustomization(second, DEV)["changed"] == [f"ConfigMap/{kube_namespace}/settings"]
    [again] = [a for a in second["applied"] if a["kustomization"] == DEV]
    assert again["ok"] and again["revision"] != dev["revision"]
    assert f"ConfigMap/{kube_namespace}/settings configured" in again["summary"]
    assert live_color(kube_client, kube_namespace, "settings") == "green"

    problems = Problems()
    rules = load_repo(repo, problems).rules
    [ks] = [k for k in rules.kustomizations if k.name == "dev"]
    assert again["revision"] == worktree_revision(ks, build_kustomization(repo, ks).manifests)
    with open_store(state_url(state)) as store:
        [entry] = list_inventory(store, DEV)
        events = list_events(store)
    assert entry.revision == again["revision"] and entry.object.name == "settings"
    assert any(e.object_name == DEV and again["revision"] in e.message for e in events)
    watcher.process.send_signal(signal.SIGINT)
    assert watcher.process.wait(timeout=LINE_DEADLINE) == 130
    assert "Traceback" not in watcher.stderr.read_text()


def test_watch_cluster_with_an_unreachable_api_server_reports_it_and_keeps_running(
        tmp_path: Path, start: Callable[..., Watcher]) -> None:
    repo = dev_checkout(tmp_path / "dev", "anywhere")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    kubeconfig = tmp_path / "closed.kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "closed",
        "clusters": [{"name": "closed", "cluster": {"server": f"https://{address}",
                                                    "insecure-skip-tls-verify": True}}],
        "users": [{"name": "me", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "closed", "context": {"cluster": "closed", "user": "me"}}]}))
    watcher = start(repo, str(tmp_path / "state.db"), "--apply", "--kubeconfig", str(kubeconfig))

    first = watcher.next_plan()
    edit(repo / SETTINGS, "blue", "green")
    second = watcher.next_plan(lambda r: SETTINGS in r["trigger"])
    for report in (first, second):
        assert not report["ok"] and report["planned"]
        assert report["objects"] == [] and report["applied"] == []
        [error] = report["errors"]
        assert error["path"].endswith("closed.kubeconfig")
        assert "the API server is unreachable" in error["message"] and address in error["message"]
        assert "not-a-real-token" not in json.dumps(report)
    assert watcher.process.poll() is None
    watcher.process.send_signal(signal.SIGINT)
    assert watcher.process.wait(timeout=LINE_DEADLINE) == 130
    assert "Traceback" not in watcher.stderr.read_text()
