"""`postBuild.substituteFrom` on a real kube-apiserver: `gitward reconcile kustomization` and
`gitward diff kustomization` read the ConfigMaps and Secrets from the Kustomization's namespace
and substitute their variables as kustomize-controller does; the offline `gitward build` skips
them with a warning.

Each test gets a fresh namespace, a bare git repository holding a GitRepository and a
Kustomization (in that namespace) whose path renders one ConfigMap full of `${...}`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest
import urllib3
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from engine.cli import main
from engine.errors import RuleError, SourcePos
from engine.model import Kustomization, SourceRef, SubstituteFrom
from engine.observe.cluster import ClusterError
from engine.reconcile.build import build_kustomization
from engine.reconcile.watch import LiveCluster, replan
from engine.store.db import open_store, state_url
from tests.integration.git_env import BareRepo, make_bare_repo
from tests.integration.kube_env import KubeAPI

SECRET_VALUE = "hunter2-5f1c9a"
"""A value that must reach the applied object and nothing else (output, errors, the store)."""

APP = dedent("""\
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: app
      namespace: {namespace}
    data:
      zone: "${{zone}}"
      region: "${{region}}"
      token: "${{token:=none}}"
      color: "${{color:=blue}}"
    """)


@dataclass
class Repo:
    """The seed checkout (rules are read from it), its bare repository, the namespace, a state
    store and the API server."""

    seed: Path
    bare: BareRepo
    namespace: str
    state: Path
    kube_api: KubeAPI
    core: kube.CoreV1Api

    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        code = main(["--state", str(self.state), *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    def reconcile(self, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        return self.cli(capsys, "reconcile", "kustomization", "app", "-n", self.namespace,
                        "--with-source", "--repo", str(self.seed), "--workdir",
                        str(self.state.parent / "cache"), "--kubeconfig", str(self.kube_api.kubeconfig))

    def diff(self, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        return self.cli(capsys, "diff", "kustomization", "app", "-n", self.namespace, "--repo",
                        str(self.seed), "--kubeconfig", str(self.kube_api.kubeconfig))

    def applied(self) -> dict[str, str]:
        data: dict[str, str] | None = self.core.read_namespaced_config_map("app", self.namespace).data
        return data or {}

    def config_map(self, name: str, data: dict[str, str]) -> None:
        self.core.create_namespaced_config_map(self.namespace, kube.V1ConfigMap(
            metadata=kube.V1ObjectMeta(name=name), data=data))

    def secret(self, name: str, data: dict[str, str]) -> None:
        self.core.create_namespaced_secret(self.namespace, kube.V1Secret(
            metadata=kube.V1ObjectMeta(name=name), string_data=data))

    def store_bytes(self) -> bytes:
        files = [self.state, self.state.with_name(self.state.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())


def make_repo(tmp_path: Path, kube_api: KubeAPI, kube_client: kube.ApiClient, namespace: str,
              substitute_from: Sequence[str], spec_extra: str = "") -> Repo:
    """A repo whose Kustomization `app` takes `substitute_from` (YAML list items, one a line)."""
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    seed, bare_path = tmp_path / "seed", tmp_path / "app.git"
    (seed / "flux").mkdir(parents=True)
    (seed / "app").mkdir()
    (seed / "app/app.yaml").write_text(APP.format(namespace=namespace))
    refs = "".join(f"      - {item}\n" for item in substitute_from)
    (seed / "flux/sync.yaml").write_text(dedent(f"""\
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata:
          name: app
          namespace: {namespace}
        spec:
          interval: 1m
          ref:
            branch: main
          url: {bare_path.as_uri()}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: app
          namespace: {namespace}
        spec:
          interval: 10m
          path: ./app
          prune: true
          sourceRef:
            kind: GitRepository
            name: app
          postBuild:
            substitute:
              region: eu-central-1
            substituteFrom:
        """) + refs + spec_extra)
    bare = make_bare_repo(bare_path, seed)
    return Repo(seed, bare, namespace, tmp_path / "state.db", kube_api, kube.CoreV1Api(kube_client))


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_config_map_and_secret_variables_reach_the_applied_object(
        tmp_path: Path, kube_api: KubeAPI, kube_client: kube.ApiClient, kube_namespace: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A later object overrides an earlier one, `substitute` overrides both, newlines go; the
    Secret's value is in the applied object and nowhere in the output or the store."""
    repo = make_repo(tmp_path, kube_api, kube_client, kube_namespace, [
        "{kind: ConfigMap, name: cluster-vars}", "{kind: Secret, name: cluster-secrets}"])
    repo.config_map("cluster-vars", {"zone": "\naz-1a\n", "region": "from-configmap",
                                     "color": "green"})
    repo.secret("cluster-secrets", {"zone": "az-1b\n", "token": SECRET_VALUE})

    code, out, err = repo.reconcile(capsys)
    assert code == 0, out + err
    assert repo.applied() == {"zone": "az-1b", "region": "eu-central-1", "token": SECRET_VALUE,
                              "color": "green"}
    assert SECRET_VALUE not in out + err
    assert SECRET_VALUE.encode() not in repo.store_bytes()


def test_a_missing_config_map_fails_the_sync_at_its_reference_and_applies_nothing(
        tmp_path: Path, kube_api: KubeAPI, kube_client: kube.ApiClient, kube_namespace: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path, kube_api, kube_client, kube_namespace,
                     ["{kind: Secret, name: present}", "{kind: ConfigMap, name: cluster-vars}"])
    repo.secret("present", {"token": SECRET_VALUE})

    code, out, err = repo.reconcile(capsys)
    assert code == 2, out + err
    line = line_of(repo.seed / "flux/sync.yaml", "name: cluster-vars")
    assert (f"flux/sync.yaml:{line}:" in err
            and "substitute from 'ConfigMap/cluster-vars' error: configmaps \"cluster-vars\" "
                f"not found in namespace {kube_namespace}" in err), err
    assert "Traceback" not in err and SECRET_VALUE not in out + err
    with pytest.raises(ApiException) as gone:
        repo.applied()
    assert gone.value.status == 404
    _, events, _ = repo.cli(capsys, "events", "-o", "json")
    assert "cluster-vars" in events and SECRET_VALUE not in events


def test_an_optional_missing_object_is_skipped(
        tmp_path: Path, kube_api: KubeAPI, kube_client: kube.ApiClient, kube_namespace: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path, kube_api, kube_client, kube_namespace, [
        "{kind: ConfigMap, name: absent, optional: true}", "{kind: Secret, name: gone, optional: true}"])

    code, out, err = repo.reconcile(capsys)
    assert code == 0, out + err
    assert "absent" not in out + err
    assert repo.applied() == {"zone": "", "region": "eu-central-1", "token": "none", "color": "blue"}


def test_an_account_that_may_not_read_the_secret_still_gets_its_variables(
        tmp_path: Path, kube_api: KubeAPI, kube_client: kube.ApiClient, kube_namespace: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """kustomize-controller reads `substituteFrom` objects with its own client, not as
    `serviceAccountName`: the account only limits what is applied (here: ConfigMaps)."""
    repo = make_repo(tmp_path, kube_api, kube_client, kube_namespace,
                     ["{kind: Secret, name: cluster-secrets}"], spec_extra="  serviceAccountName: deployer\n")
    repo.secret("cluster-secrets", {"token": SECRET_VALUE})
    rbac = kube.RbacAuthorizationV1Api(kube_client)
    rbac.create_namespaced_role(kube_namespace, kube.V1Role(
        metadata=kube.V1ObjectMeta(name="configmaps-only"),
        rules=[kube.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["*"])]))
    rbac.create_namespaced_role_binding(kube_namespace, kube.V1RoleBinding(
        metadata=kube.V1ObjectMeta(name="deployer"),
        role_ref=kube.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="configmaps-only"),
        subjects=[kube.RbacV1Subject(kind="ServiceAccount", name="deployer", namespace=kube_namespace)]))

    code, out, err = repo.reconcile(capsys)
    assert code == 0, out + err
    assert repo.applied()["token"] == SECRET_VALUE


def test_diff_reads_the_variables_from_the_cluster(
        tmp_path: Path, kube_api: KubeAPI, kube_client: kube.ApiClient, kube_namespace: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path, kube_api, kube_client, kube_namespace,
                     ["{kind: ConfigMap, name: cluster-vars}"])
    repo.config_map("cluster-vars", {"zone": "az-1a"})
    code, out, err = repo.reconcile(capsys)
    assert code == 0, out + err

    code, out, err = repo.diff(capsys)
    assert code == 0 and "►" not in out, out + err

    repo.core.patch_namespaced_config_map("cluster-vars", kube_namespace, {"data": {"zone": "az-1c"}})
    code, out, err = repo.diff(capsys)
    assert code == 1, out + err
    assert f"► ConfigMap/{kube_namespace}/app drifted" in out
    assert 'data.zone: "az-1a" -> "az-1c"' in out

    repo.core.delete_namespaced_config_map("cluster-vars", kube_namespace)
    code, out, err = repo.diff(capsys)
    assert code == 2 and "substitute from 'ConfigMap/cluster-vars' error" in err, out + err


def test_offline_build_warns_and_substitutes_only_inline_variables(
        tmp_path: Path, kube_api: KubeAPI, kube_client: kube.ApiClient, kube_namespace: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path, kube_api, kube_client, kube_namespace,
                     ["{kind: ConfigMap, name: cluster-vars}"])
    repo.config_map("cluster-vars", {"zone": "az-1a"})

    code, out, err = repo.cli(capsys, "build", "kustomization", "app", "-n", kube_namespace,
                              "--repo", str(repo.seed), "-o", "json")
    assert code == 0, err
    assert ("postBuild.substituteFrom ConfigMap/cluster-vars is read from the cluster: not applied "
            "by an offline build") in err
    [built] = json.loads(out)  # `zone: ${zone}` with no zone is `zone:`, a null, as in Flux
    assert built["data"] == {"zone": None, "region": "eu-central-1", "token": "none", "color": "blue"}


def test_secret_data_is_decoded_as_the_api_server_stores_it(
        tmp_path: Path, kube_api: KubeAPI, kube_client: kube.ApiClient, kube_namespace: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A Secret written with base64 `data` (not `stringData`) gives the same variables."""
    repo = make_repo(tmp_path, kube_api, kube_client, kube_namespace,
                     ["{kind: Secret, name: encoded}"])
    repo.core.create_namespaced_secret(kube_namespace, kube.V1Secret(
        metadata=kube.V1ObjectMeta(name="encoded"),
        data={"zone": base64.b64encode(b"az-9z\n").decode()}))

    code, out, err = repo.reconcile(capsys)
    assert code == 0, out + err
    assert repo.applied()["zone"] == "az-9z"


def test_watch_apply_substitutes_from_the_cluster(
        tmp_path: Path, kube_api: KubeAPI, kube_client: kube.ApiClient, kube_namespace: str) -> None:
    """`gitward watch --apply`: the live comparison and the sync of the working tree both read
    the ConfigMap."""
    repo = make_repo(tmp_path, kube_api, kube_client, kube_namespace,
                     ["{kind: ConfigMap, name: cluster-vars}"])
    repo.config_map("cluster-vars", {"zone": "az-1a"})
    cluster = LiveCluster(kube_api.kubeconfig, apply=True)
    try:
        with open_store(state_url(str(repo.state))) as store:
            report = replan(repo.seed, store, datetime.now(UTC), cluster=cluster)
    finally:
        cluster.close()
    assert report.ok, [p.render() for p in report.errors]
    [applied] = report.applied
    assert applied.ready, applied.error
    assert repo.applied()["zone"] == "az-1a"


def test_a_read_that_fails_is_an_error_at_the_reference_and_none_is_made_when_not_wanted(
        tmp_path: Path) -> None:
    """The reader's contract without a cluster: a refused read fails the build at the
    reference; when every object disables substitution, Flux reads nothing, nor does gitward."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app/app.yaml").write_text(APP.format(namespace="apps"))
    origin = SourcePos("flux/sync.yaml", 21, 9)
    target = Kustomization(name="app", namespace="apps", source_ref=SourceRef("app"), path="./app",
                           substitute_from=(SubstituteFrom("Secret", "creds", origin=origin),))
    asked: list[tuple[str, str]] = []

    def refused(ref: SubstituteFrom, namespace: str) -> dict[str, str] | None:
        asked.append((ref.name, namespace))
        raise ClusterError("cannot read Secret/apps/creds: the API server answered 403 (forbidden)")

    with pytest.raises(RuleError) as failed:
        build_kustomization(tmp_path, target, variables_from=refused)
    [problem] = failed.value.problems
    assert problem.pos == origin and asked == [("creds", "apps")]
    assert problem.message == ("substitute from 'Secret/creds' error: cannot read Secret/apps/creds: "
                               "the API server answered 403 (forbidden)")

    asked.clear()
    (tmp_path / "app/app.yaml").write_text(APP.format(namespace="apps").replace(
        "  namespace: apps\n", "  namespace: apps\n  labels:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n"))
    built = build_kustomization(tmp_path, target, variables_from=refused)
    assert asked == [] and built.warnings == ()
    assert built.manifests[0].body["data"] == {"zone": "${zone}", "region": "${region}",
                                               "token": "${token:=none}", "color": "${color:=blue}"}
