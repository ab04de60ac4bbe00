"""`gitward diff kustomization`, `gitward trace` and dependsOn ordering, on examples/homelab
served from a bare git repository and synced into the session's real kube-apiserver."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest
import urllib3
from kubernetes import client as kube

from engine.cli import main
from engine.errors import Problems
from engine.model import Kustomization, ObjectKey
from engine.observe.cluster import ClusterClient, connect, read_object
from engine.reconcile.diff import diff_kustomization
from engine.rules.load import load_repo
from engine.store.actions import list_actions
from engine.store.db import open_store, state_url
from tests.integration.git_env import BareRepo, push_commit
from tests.integration.kube_env import KubeAPI
from tests.integration.test_cluster_apply import requests_sent, writes


PODINFO_IMAGE = "ghcr.io/stefanprodan/podinfo:6.5.1"
EDITED_IMAGE = "ghcr.io/stefanprodan/podinfo:6.4.0"
IMAGE_FIELD = "spec.template.spec.containers[name=podinfo].image"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@dataclass
class Homelab:
    """examples/homelab in a bare repo (`bare`), its rules checkout (`repo`), a state store, and
    the API server it syncs to."""

    bare: BareRepo
    repo: Path
    state: str
    cache: Path
    kube_api: KubeAPI
    tmp: Path

    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        return run(capsys, "--state", self.state, *args)

    def sync(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        return self.cli(capsys, "reconcile", "kustomization", *args, "--repo", str(self.repo),
                        "--workdir", str(self.cache), "--kubeconfig", str(self.kube_api.kubeconfig))

    def diff(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        return self.cli(capsys, "diff", "kustomization", "flux-system", "--repo", str(self.repo),
                        "--kubeconfig", str(self.kube_api.kubeconfig), *args)

    def revision(self) -> str:
        return f"main@sha1:{self.bare.rev('main')}"

    def push(self, files: dict[str, str], message: str) -> None:
        """Commit to the bare repo as someone else would, and make the same change in `repo`."""
        push_commit(self.bare.url, self.tmp / f"push-{self.bare.rev('main')[:8]}", files, message)
        for name, text in files.items():
            (self.repo / name).parent.mkdir(parents=True, exist_ok=True)
            (self.repo / name).write_text(text)


@pytest.fixture
def homelab(homelab_remote: tuple[BareRepo, Path], kube_api: KubeAPI, tmp_path: Path) -> Homelab:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the test server's own cert
    bare, repo = homelab_remote
    return Homelab(bare, repo, str(tmp_path / "state.db"), tmp_path / "cache", kube_api, tmp_path)


@pytest.fixture
def synced(homelab: Homelab, capsys: pytest.CaptureFixture[str]) -> Homelab:
    """`homelab` with a Secret added, synced once with `reconcile kustomization --with-source`."""
    homelab.push({"cluster/apps/podinfo/creds.yaml": secret("old-secret-value")}, "Add creds")
    code, out, err = homelab.sync(capsys, "flux-system", "--with-source")
    assert code == 0, out + err
    return homelab


@pytest.fixture
def cluster(kube_api: KubeAPI) -> Iterator[ClusterClient]:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    with connect(kube_api.kubeconfig) as opened:
        yield opened


def secret(password: str) -> str:
    return dedent(f"""\
        apiVersion: v1
        kind: Secret
        metadata:
          name: creds
          namespace: podinfo
        stringData:
          password: {password}
        """)


def config_map(name: str, namespace: str) -> str:
    return dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {name}
          namespace: {namespace}
        data:
          color: blue
        """)


def edit_image(kube_client: kube.ApiClient, image: str) -> None:
    """What `kubectl set image` does: another field manager changes the live Deployment."""
    kube.AppsV1Api(kube_client).patch_namespaced_deployment(
        "podinfo", "podinfo",
        {"spec": {"template": {"spec": {"containers": [{"name": "podinfo", "image": image}]}}}},
        field_manager="kubectl-set")


NAMESPACE_ONLY = dedent("""\
    apiVersion: v1
    kind: Namespace
    metadata:
      name: infrastructure
    """)


def reported(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("► ")]


# diff ------------------------------------------------------------------------------------------


def test_diff_shows_drift_new_and_pruned_objects_and_sends_no_write(
        synced: Homelab, cluster: ClusterClient, kube_client: kube.ApiClient,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = synced.diff(capsys)
    assert (code, out) == (0, ""), err
    assert "✔ Kustomization flux-system/flux-system: no changes" in err

    edit_image(kube_client, EDITED_IMAGE)
    (synced.repo / "cluster/apps/podinfo/extra.yaml").write_text(config_map("extra", "podinfo"))
    (synced.repo / "cluster/infrastructure/redis/redis.yaml").unlink()
    deployment = read_object(cluster, "apps/v1", "Deployment", "podinfo", "podinfo")
    assert deployment is not None

    problems = Problems()
    rules = load_repo(synced.repo, problems).rules
    ks = rules.get(ObjectKey(Kustomization.KIND, "flux-system", "flux-system"))
    assert isinstance(ks, Kustomization)
    with open_store(state_url(synced.state), readonly=True) as store, requests_sent(cluster) as seen:
        result = diff_kustomization(store, rules, ks, root=synced.repo, client=cluster)

    assert writes(seen) == []
    assert any("dryRun=All" in url for method, url in seen if method == "PATCH")  # the spy sees them
    assert result.exit_code == 1 and result.errors == ()
    assert result.lines() == [  # apply order, then prune order (dependents first)
        "► ConfigMap/podinfo/extra created",
        "► Deployment/podinfo/podinfo drifted",
        f'  {IMAGE_FIELD}: "{EDITED_IMAGE}" -> "{PODINFO_IMAGE}"',
        "► StatefulSet/infrastructure/redis deleted",
        "► Service/infrastructure/redis deleted",
        "► Namespace/infrastructure deleted",
    ]
    after = read_object(cluster, "apps/v1", "Deployment", "podinfo", "podinfo")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == deployment["metadata"]["resourceVersion"]
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == EDITED_IMAGE
    assert read_object(cluster, "v1", "ConfigMap", "podinfo", "extra") is None
    assert read_object(cluster, "apps/v1", "StatefulSet", "infrastructure", "redis") is not None

    code, out, err = synced.diff(capsys)
    assert code == 1, err
    assert reported(out) == [line for line in result.lines() if line.startswith("► ")]
    assert f'  {IMAGE_FIELD}: "{EDITED_IMAGE}" -> "{PODINFO_IMAGE}"' in out.splitlines()
    assert "5 change(s)" in err

    code, out, err = synced.diff(capsys, "-o", "json")
    assert code == 1, err
    report = json.loads(out)
    assert report["exit_code"] == 1
    assert {d["object"] for d in report["deleted"]} == {
        "StatefulSet.apps/infrastructure/redis", "Service/infrastructure/redis", "Namespace/infrastructure"}


def test_diff_and_reconcile_plan_the_same_actions_for_the_same_state(
        synced: Homelab, kube_client: kube.ApiClient, capsys: pytest.CaptureFixture[str]) -> None:
    """The plan `diff -o json` prints is the one `reconcile` carries out: per stage, the objects
    it writes (with their field diffs), and the objects it prunes, as recorded in `actions`."""
    edit_image(kube_client, EDITED_IMAGE)
    synced.push({"cluster/apps/podinfo/extra.yaml": config_map("extra", "podinfo"),
                 "cluster/infrastructure/redis/redis.yaml": NAMESPACE_ONLY},
                "Add a ConfigMap; redis's workload leaves")

    code, out, err = synced.diff(capsys, "-o", "json")
    assert code == 1, err
    plan = json.loads(out)["plan"]
    diffed = {stage["name"]: [a for a in stage["actions"] if a["change"] in ("create", "update", "recreate")]
              for stage in plan["stages"]}
    code, out, err = synced.sync(capsys, "flux-system", "--with-source")
    assert code == 0, out + err

    with open_store(state_url(synced.state), readonly=True) as store:
        [latest, *_] = list_actions(store, types=("apply", "prune"))
        recorded = [a for a in list_actions(store, types=("apply", "prune")) if a.plan_id == latest.plan_id]
    applied = {a.payload["stage"]: a.payload["objects"] for a in recorded if a.type == "apply"}
    [pruned] = [a.payload["objects"] for a in recorded if a.type == "prune"]
    assert applied == {name: actions for name, actions in diffed.items() if actions}
    assert pruned == plan["prune"]
    assert {(a["object"], a["change"]) for actions in applied.values() for a in actions} == {
        ("ConfigMap/podinfo/extra", "create"), ("Deployment.apps/podinfo/podinfo", "update")}
    assert [a["object"] for a in pruned] == ["StatefulSet.apps/infrastructure/redis", "Service/infrastructure/redis"]
    [drift] = [a for a in applied["resources"] if a["change"] == "update"]
    assert drift["diff"] == [{"path": IMAGE_FIELD, "old": EDITED_IMAGE, "new": PODINFO_IMAGE}]


def test_diff_masks_secret_values(synced: Homelab, capsys: pytest.CaptureFixture[str]) -> None:
    (synced.repo / "cluster/apps/podinfo/creds.yaml").write_text(secret("new-secret-value"))

    code, out, err = synced.diff(capsys)

    assert code == 1, err
    assert reported(out) == ["► Secret/podinfo/creds drifted"]
    assert '  data.password: "******" -> "******"' in out.splitlines()
    for value in ("old-secret-value", "new-secret-value"):
        assert value not in out + err
        assert base64.b64encode(value.encode()).decode() not in out + err


def test_diff_renders_a_local_path_in_place_of_spec_path(
        synced: Homelab, capsys: pytest.CaptureFixture[str]) -> None:
    local = synced.tmp / "elsewhere" / "cluster"
    shutil.copytree(synced.repo / "cluster", local)
    deployment = local / "apps/podinfo/deployment.yaml"
    deployment.write_text(deployment.read_text().replace("replicas: 1", "replicas: 2"))

    code, out, err = synced.diff(capsys, "--path", str(local))
    assert code == 1, err
    assert reported(out) == ["► Deployment/podinfo/podinfo drifted"]
    assert "  spec.replicas: 1 -> 2" in out.splitlines()

    inside = synced.repo / "cluster/apps"
    code, out, err = synced.diff(capsys, "--path", str(inside))
    assert code == 1, err
    assert "► StatefulSet/infrastructure/redis deleted" in reported(out)
    assert not any(line.endswith(("created", "drifted")) for line in reported(out))


def test_diff_exits_2_when_the_server_refuses_an_object_and_still_shows_the_rest(
        synced: Homelab, kube_client: kube.ApiClient, capsys: pytest.CaptureFixture[str]) -> None:
    edit_image(kube_client, EDITED_IMAGE)
    service = synced.repo / "cluster/infrastructure/redis/redis.yaml"
    service.write_text(service.read_text().replace("- port: 6379", "- port: 99999"))

    code, out, err = synced.diff(capsys)

    assert code == 2
    assert reported(out) == ["► Deployment/podinfo/podinfo drifted"]
    assert "Service/infrastructure/redis" in err and "99999" in err
    assert "1 object(s) could not be compared" in err


def test_diff_input_errors_exit_2_without_a_traceback(homelab: Homelab, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = homelab.cli(capsys, "diff", "kustomization", "flux-system", "--repo",
                               str(homelab.repo), "--kubeconfig", str(tmp_path / "missing"))
    assert code == 2 and "no kubeconfig found" in err and "Traceback" not in err
    code, _, err = homelab.diff(capsys, "-n", "nowhere")
    assert code == 2 and "Kustomization nowhere/flux-system not found" in err


# trace -----------------------------------------------------------------------------------------


def test_trace_follows_an_object_to_its_kustomization_revision_and_source(
        synced: Homelab, capsys: pytest.CaptureFixture[str]) -> None:
    applied = synced.revision()
    sync_file = synced.repo / "cluster/system/flux-system/gotk-sync.yaml"
    sync_file.write_text(sync_file.read_text().replace(
        synced.bare.url, "ssh://git@git.example.com/homelab.git"))

    code, out, err = synced.cli(capsys, "trace", "deployment", "podinfo/podinfo", "--repo",
                                str(synced.repo))

    assert code == 0, err
    lines = out.splitlines()
    assert "Object:         Deployment.apps/podinfo/podinfo" in lines
    assert "Status:         Managed by gitward" in lines
    assert "Kustomization:  flux-system/flux-system" in lines
    assert any(line.startswith(f"Applied:        {applied} at ") for line in lines)
    assert "GitRepository:  flux-system/flux-system" in lines
    assert "URL:            ssh://git@git.example.com/homelab.git" in lines
    assert any(line.startswith(f"Revision:       {applied}, fetched ") for line in lines)
    assert "Commit:         'Add creds' by " in out

    code, out, err = synced.cli(capsys, "trace", "Deployment.apps", "podinfo", "-n", "podinfo",
                                "--repo", str(synced.repo), "-o", "json")
    assert code == 0, err
    [found] = json.loads(out)
    assert found["object"] == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "podinfo",
                               "name": "podinfo", "id": "Deployment.apps/podinfo/podinfo"}
    assert found["applied"]["revision"] == applied and found["managed"] is True
    assert (found["kustomization"]["name"], found["kustomization"]["ready"]) == ("flux-system", "True")
    assert found["source"]["url"] == "ssh://git@git.example.com/homelab.git"
    assert found["source"]["revision"] == applied

    code, out, err = synced.cli(capsys, "trace", "namespaces", "podinfo", "--repo", str(synced.repo))
    assert code == 0 and "Object:         Namespace/podinfo" in out, err

    code, out, err = synced.cli(capsys, "trace", "deployment", "nowhere/nothing", "--repo",
                                str(synced.repo))
    assert code == 2 and out == ""
    assert "deployment nowhere/nothing is in no Kustomization's inventory" in err


def test_trace_shows_a_fetched_revision_not_applied_yet_and_a_pruned_object(
        synced: Homelab, capsys: pytest.CaptureFixture[str]) -> None:
    first = synced.revision()
    redis = "cluster/infrastructure/redis/redis.yaml"
    namespace_only = (synced.repo / redis).read_text().split("---")[0]  # a pruned Namespace would
    synced.push({redis: namespace_only}, "Remove redis")  # stay Terminating: no controllers here
    code, _, err = synced.cli(capsys, "reconcile", "source", "git", "flux-system", "--repo",
                              str(synced.repo), "--workdir", str(synced.cache))
    assert code == 0, err

    code, out, err = synced.cli(capsys, "trace", "statefulset", "infrastructure/redis", "--repo",
                                str(synced.repo))
    assert code == 0, err
    assert f"Revision:       {synced.revision()} (not applied yet)" in out
    assert f"Last applied:   {first}" in out

    code, _, err = synced.sync(capsys, "flux-system")
    assert code == 0, err
    code, out, err = synced.cli(capsys, "trace", "statefulset", "infrastructure/redis", "--repo",
                                str(synced.repo))
    assert code == 2 and out == ""
    assert "is in no Kustomization's inventory; pruned from Kustomization flux-system/flux-system" in err


def test_trace_without_a_store_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--state", str(tmp_path / "none.db"), "trace", "deployment",
                       "podinfo/podinfo", "--repo", str(tmp_path))
    assert code == 2 and "does not exist (nothing applied yet)" in err
    assert not (tmp_path / "none.db").exists()


# dependsOn -------------------------------------------------------------------------------------

LAYERS = """\
kustomization infra {
  source     git flux-system
  path       "./cluster/infrastructure"
  prune      true
  timeout    1m
}

kustomization apps {
  source     git flux-system
  path       "./cluster/apps/ledger"
  prune      true
  timeout    1m
  depends-on infra
}
"""


@pytest.fixture
def layered(homelab: Homelab) -> Homelab:
    """The homelab's GitRepository, and two Kustomizations over two of its paths (apps after
    infra) in place of the top-level one."""
    sync_file = homelab.repo / "cluster/system/flux-system/gotk-sync.yaml"
    sync_file.write_text(sync_file.read_text().split("---\napiVersion: kustomize.toolkit")[0])
    (homelab.repo / "layers.rules").write_text(LAYERS)
    return homelab


def started(out: str) -> list[str]:
    prefix = "► reconciling Kustomization "
    return [line[len(prefix):] for line in out.splitlines() if line.startswith(prefix)]


def test_dependencies_go_first_and_a_dependent_waits_for_them(
        layered: Homelab, kube_client: kube.ApiClient, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = layered.sync(capsys, "apps", "--with-source")
    assert code == 1
    assert started(out) == ["flux-system/apps"]
    assert "✗ Kustomization flux-system/apps skipped: dependency flux-system/infra is not ready" in err
    code, out, _ = layered.cli(capsys, "get", "kustomizations", "--repo", str(layered.repo), "-o", "json")
    status = {row["name"]: row for row in json.loads(out)}
    assert status["apps"]["ready"] == "False"
    assert status["apps"]["message"] == "dependency flux-system/infra is not ready"

    code, out, err = layered.sync(capsys, "--all", "--with-source")
    assert code == 0, out + err
    assert started(out) == ["flux-system/infra", "flux-system/apps"]
    first = layered.revision()
    assert f"✔ Kustomization flux-system/apps at {first}" in out
    ledger = kube.AppsV1Api(kube_client).read_namespaced_deployment("ledger", "ledger")
    assert ledger.metadata is not None and ledger.metadata.labels is not None
    assert ledger.metadata.labels["kustomize.toolkit.fluxcd.io/name"] == "apps"

    layered.push({"cluster/apps/ledger/extra.yaml": config_map("extra", "ledger")}, "Add extra")
    code, out, err = layered.sync(capsys, "apps", "--with-source")
    assert code == 1
    assert (f"✗ Kustomization flux-system/apps skipped: dependency flux-system/infra is not up to "
            f"date: it applied {first}, the source is at {layered.revision()}") in err


def test_a_failed_dependency_skips_its_dependents(
        layered: Homelab, kube_client: kube.ApiClient, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = layered.sync(capsys, "--all", "--with-source")
    assert code == 0, out + err
    redis = layered.repo / "cluster/infrastructure/redis/redis.yaml"
    layered.push({"cluster/infrastructure/redis/redis.yaml":
                  redis.read_text().replace("- port: 6379", "- port: 99999"),
                  "cluster/apps/ledger/extra.yaml": config_map("extra", "ledger")},
                 "Break redis, add a ledger ConfigMap")

    code, out, err = layered.sync(capsys, "--all", "--with-source")

    assert code == 1
    assert started(out) == ["flux-system/infra", "flux-system/apps"]
    assert f"✗ Kustomization flux-system/infra at {layered.revision()}" in err
    assert "99999" in err
    assert "✗ Kustomization flux-system/apps skipped: dependency flux-system/infra is not ready" in err
    assert "sync failed for Kustomization flux-system/infra, flux-system/apps" in err
    with pytest.raises(kube.ApiException) as missing:
        kube.CoreV1Api(kube_client).read_namespaced_config_map("extra", "ledger")
    assert missing.value.status == 404


def test_a_dependency_cycle_is_a_located_error_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cycle.rules").write_text(dedent("""\
        source git flux-system { url "https://example.com/homelab.git" }
        kustomization a {
          source git flux-system
          depends-on b
        }
        kustomization b {
          source git flux-system
          depends-on a
        }
        """))
    code, out, err = run(capsys, "--state", str(tmp_path / "state.db"), "reconcile",
                         "kustomization", "--all", "--repo", str(tmp_path),
                         "--kubeconfig", str(tmp_path / "missing"))
    assert code == 2 and out == ""
    assert "cycle.rules:4:" in err
    assert "dependency cycle flux-system/a -> flux-system/b -> flux-system/a" in err
    assert not (tmp_path / "state.db").exists()

    code, _, err = run(capsys, "reconcile", "kustomization", "a", "--all", "--repo", str(tmp_path))
    assert code == 2 and "name Kustomizations or pass --all, not both" in err
    code, _, err = run(capsys, "reconcile", "source", "git", "--all", "--repo", str(tmp_path))
    assert code == 2 and "--all works with `gitward reconcile kustomization` only" in err
