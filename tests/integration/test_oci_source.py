"""OCIRepository sources against the real docker-registry: pull, verify, unpack, record, apply.

Artifacts are pushed in Flux's layout through the distribution API (tests/integration/oci_env.py)
into the session's shared storage, then pulled through the open, token and Basic/TLS registries.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as kube

from engine.cli import main
from engine.model import LayerOperation, LayerSelector, OCIRef, OCISource
from engine.observe.dockerconfig import Credentials
from engine.observe.git import SourceError
from engine.observe.oci import pull_artifact, unpacked_root
from engine.observe.untar import ArchiveError, extract
from engine.reconcile.sources import NEW_ARTIFACT, PULL_FAILED, UP_TO_DATE, reconcile_oci_source
from engine.store.artifacts import latest_oci_revision
from engine.store.db import Store, open_store, state_url
from engine.store.queries import list_events
from engine.store.status import object_status
from tests.integration.kube_env import KubeAPI
from tests.integration.oci_env import (
    ANNOTATIONS,
    FLUX_CONTENT,
    Member,
    corrupt_blob,
    push_artifact,
    push_index,
    sha256,
    tarball,
)
from tests.integration.registry_env import (
    KeyPair,
    RegistryEnv,
    RunningRegistry,
    TokenService,
    delete_manifests,
    ssl_context,
)

FILES = {
    "deploy/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: oci-demo\n",
    "deploy/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
                          "  namespace: oci-demo\ndata:\n  colour: blue\n",
    "README.md": "not a manifest\n",
}
HELM = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def repository() -> str:
    """A fresh repository per test, so tags never collide across tests (the storage is shared)."""
    return f"public/oci-{secrets.token_hex(4)}"


def source(registry: RunningRegistry, repo: str, **fields: Any) -> OCISource:
    base = OCISource(name="manifests", url=f"oci://{registry.host}/{repo}", insecure=True,
                     timeout=timedelta(seconds=20))
    return replace(base, **fields)


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(state_url(str(tmp_path / "state.db"))) as opened:
        yield opened


# Pulling ---------------------------------------------------------------------------------------


def test_a_tag_is_pulled_verified_and_unpacked_with_flux_revision(open_registry: RunningRegistry,
                                                                  tmp_path: Path) -> None:
    repo = repository()
    digest = push_artifact(open_registry.url, repo, "latest", tarball(FILES))
    artifact = pull_artifact(source(open_registry, repo), cache_dir=tmp_path / "cache")
    assert artifact.revision == f"latest@{digest}" and artifact.tag == "latest"
    assert artifact.digest == digest and artifact.media_type == FLUX_CONTENT
    assert artifact.layer_digest == sha256(tarball(FILES))
    assert (artifact.origin_source, artifact.origin_revision, artifact.created) == (
        ANNOTATIONS["org.opencontainers.image.source"],
        ANNOTATIONS["org.opencontainers.image.revision"],
        ANNOTATIONS["org.opencontainers.image.created"])
    assert tree(artifact.path) == FILES
    again = pull_artifact(source(open_registry, repo), cache_dir=tmp_path / "cache")
    assert again.path == artifact.path and again.revision == artifact.revision


def test_semver_picks_the_highest_matching_tag_and_the_filter_narrows_it(
        open_registry: RunningRegistry, tmp_path: Path) -> None:
    repo = repository()
    digests = {tag: push_artifact(open_registry.url, repo, tag, tarball({"v.yaml": f"# {tag}\n"}))
               for tag in ("1.0.0", "1.2.0", "v1.3.0-rc.1", "2.0.0", "latest")}
    ranged = pull_artifact(source(open_registry, repo, ref=OCIRef(semver=">=1.0.0 <2.0.0")),
                           cache_dir=tmp_path / "a")
    assert ranged.revision == f"1.2.0@{digests['1.2.0']}"
    rc = pull_artifact(source(open_registry, repo, ref=OCIRef(semver=">=1.0.0-0 <2.0.0",
                                                              semver_filter="-rc")),
                       cache_dir=tmp_path / "b")
    assert rc.revision == f"v1.3.0-rc.1@{digests['v1.3.0-rc.1']}"
    assert tree(rc.path) == {"v.yaml": "# v1.3.0-rc.1\n"}
    with pytest.raises(SourceError) as none:
        pull_artifact(source(open_registry, repo, ref=OCIRef(semver=">=3.0.0")), cache_dir=tmp_path / "c")
    assert str(none.value) == (f"no tag of {open_registry.host}/{repo} matches semver '>=3.0.0'; "
                               "tags: 1.0.0, 1.2.0, 2.0.0, latest, v1.3.0-rc.1")


def test_a_digest_ref_is_pulled_by_digest_and_named_by_it_alone(open_registry: RunningRegistry,
                                                                tmp_path: Path) -> None:
    repo = repository()
    first = push_artifact(open_registry.url, repo, "v1", tarball({"a.yaml": "a: 1\n"}))
    push_artifact(open_registry.url, repo, "v1", tarball({"a.yaml": "a: 2\n"}))  # v1 moves on
    artifact = pull_artifact(source(open_registry, repo, ref=OCIRef(tag="v1", digest=first)),
                             cache_dir=tmp_path / "cache")
    assert artifact.revision == first and artifact.tag == ""
    assert tree(artifact.path) == {"a.yaml": "a: 1\n"}


def test_copy_keeps_the_tarball_and_a_kustomization_reads_it_unpacked(open_registry: RunningRegistry,
                                                                      tmp_path: Path) -> None:
    repo = repository()
    layer = tarball(FILES)
    push_artifact(open_registry.url, repo, "latest", layer)
    artifact = pull_artifact(source(open_registry, repo, layer_selector=LayerSelector(
        FLUX_CONTENT, LayerOperation.COPY)), cache_dir=tmp_path / "cache")
    assert artifact.path.is_file() and artifact.path.read_bytes() == layer
    assert tree(unpacked_root(artifact.path, LayerOperation.COPY)) == FILES


def test_the_layer_selector_picks_its_media_type_among_several(open_registry: RunningRegistry,
                                                               tmp_path: Path) -> None:
    repo = repository()
    push_artifact(open_registry.url, repo, "latest", tarball({"chart.yaml": "name: c\n"}),
                  media_type=HELM, extra_layers=[(FLUX_CONTENT, tarball(FILES))])
    first = pull_artifact(source(open_registry, repo), cache_dir=tmp_path / "a")
    assert tree(first.path) == {"chart.yaml": "name: c\n"}
    chosen = pull_artifact(source(open_registry, repo, layer_selector=LayerSelector(FLUX_CONTENT)),
                           cache_dir=tmp_path / "b")
    assert tree(chosen.path) == FILES and chosen.media_type == FLUX_CONTENT


# Failures: each a clear message, nothing half-written --------------------------------------------


def failure(registry: RunningRegistry, repo: str, cache: Path, **fields: Any) -> str:
    with pytest.raises(SourceError) as caught:
        pull_artifact(source(registry, repo, **fields), cache_dir=cache)
    return str(caught.value)


def leftovers(cache: Path) -> list[str]:
    """What a failed pull left in the cache besides its (empty) directories."""
    return sorted(p.name for p in cache.rglob("*") if not p.is_dir())


def test_a_tampered_blob_fails_its_digest_check(open_registry: RunningRegistry,
                                                registry_env: RegistryEnv, tmp_path: Path) -> None:
    repo = repository()
    layer = tarball({"tampered.yaml": "x: 1\n"})
    push_artifact(open_registry.url, repo, "latest", layer)
    corrupt_blob(registry_env.storage, sha256(layer))
    message = failure(open_registry, repo, tmp_path / "cache")
    assert message.startswith(f"the layer of {open_registry.host}/{repo} does not match its manifest: "
                              f"expected {sha256(layer)} ({len(layer)} bytes), received sha256:")
    assert leftovers(tmp_path / "cache") == []


@pytest.mark.parametrize("member, complaint", [
    (Member("../evil.yaml", b"x: 1\n"), "the archive holds a path that leaves its root, '../evil.yaml'"),
    (Member("deploy/../../evil.yaml", b"x: 1\n"),
     "the archive holds a path that leaves its root, 'deploy/../../evil.yaml'"),
    (Member("/etc/evil.yaml", b"x: 1\n"), "the archive holds an absolute path, '/etc/evil.yaml'"),
    (Member("deploy/escape", kind=tarfile.SYMTYPE, link="../../outside"),
     "the symlink 'deploy/escape' points outside the archive ('../../outside')"),
    (Member("abs", kind=tarfile.SYMTYPE, link="/etc/passwd"),
     "the symlink 'abs' points outside the archive ('/etc/passwd')"),
    (Member("hard", kind=tarfile.LNKTYPE, link="/etc/passwd"),
     "the hard link 'hard' points outside the archive's files ('/etc/passwd')"),
    (Member("dev", kind=tarfile.CHRTYPE), "the archive holds a device file, 'dev'"),
])
def test_an_unsafe_archive_is_refused_and_leaves_nothing(open_registry: RunningRegistry,
                                                         tmp_path: Path, member: Member,
                                                         complaint: str) -> None:
    repo = repository()
    push_artifact(open_registry.url, repo, "latest", tarball(FILES, [member]))
    message = failure(open_registry, repo, tmp_path / "cache")
    assert message == f"the artifact of {open_registry.host}/{repo}: {complaint}"
    assert not (tmp_path / "evil.yaml").exists() and not (tmp_path / "outside").exists()
    source_dirs = list((tmp_path / "cache" / "oci" / "flux-system").iterdir())
    assert [list(d.iterdir()) for d in source_dirs] == [[]]  # no unpacked tree, no blob
    assert leftovers(tmp_path / "cache") == []


def test_symlinks_inside_are_left_out_and_hard_links_copied(tmp_path: Path) -> None:
    archive = tmp_path / "layer.tar.gz"
    archive.write_bytes(tarball({"a/real.yaml": "k: v\n"}, [
        Member("a/link.yaml", kind=tarfile.SYMTYPE, link="real.yaml"),
        Member("b/copy.yaml", kind=tarfile.LNKTYPE, link="a/real.yaml"),
    ]))
    unpacked = extract(archive, tmp_path / "out")
    assert unpacked.skipped_links == ("a/link.yaml",)
    assert tree(tmp_path / "out") == {"a/real.yaml": "k: v\n", "b/copy.yaml": "k: v\n"}


def test_an_archive_that_unpacks_past_the_limit_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(tarball({"zeros.yaml": "0" * 200_000}))
    assert archive.stat().st_size < 2_000  # it compresses to almost nothing
    with pytest.raises(ArchiveError, match="unpacks to more than 100000 bytes .at 'zeros.yaml'."):
        extract(archive, tmp_path / "out", max_bytes=100_000)
    assert list(tmp_path.iterdir()) == [archive]
    archive.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ArchiveError, match="not a valid gzip'd tar archive|could not be unpacked"):
        extract(archive, tmp_path / "out")
    assert list(tmp_path.iterdir()) == [archive]


def test_a_wrong_media_type_a_missing_tag_and_an_index_are_named(open_registry: RunningRegistry,
                                                                tmp_path: Path) -> None:
    repo = repository()
    digest = push_artifact(open_registry.url, repo, "chart", tarball(FILES), media_type=HELM)
    assert failure(open_registry, repo, tmp_path / "a", ref=OCIRef(tag="chart"),
                   layer_selector=LayerSelector(FLUX_CONTENT)) == (
        f"no layer of media type '{FLUX_CONTENT}' in {open_registry.host}/{repo}@{digest} "
        f"(its layers: {HELM})")
    assert failure(open_registry, repo, tmp_path / "b", ref=OCIRef(tag="nope")) == (
        f"tag 'nope' not found in {open_registry.host}/{repo}; tags: chart")
    push_index(open_registry.url, repo, "multi", digest)
    assert "is an image index (a multi-platform image), not an artifact" in failure(
        open_registry, repo, tmp_path / "c", ref=OCIRef(tag="multi"))
    assert failure(open_registry, "public/no-such-repo", tmp_path / "d") == (
        "repository public/no-such-repo does not exist on registry " + open_registry.host)


def test_the_token_registry_asks_for_credentials_and_takes_them(
        open_registry: RunningRegistry, token_registry: RunningRegistry, token_service: TokenService,
        registry_env: RegistryEnv, store: Store, tmp_path: Path) -> None:
    # Only private/app is private in the token policy; the artifact's tag is deleted after the
    # test, so the registry tests that list private/app's tags see theirs alone.
    digest = push_artifact(open_registry.url, "private/app", "manifests", tarball(FILES))
    try:
        _pull_private(token_registry, token_service, registry_env, store, tmp_path, digest)
    finally:
        delete_manifests(open_registry.url, "private/app", [digest])


def _pull_private(token_registry: RunningRegistry, token_service: TokenService,
                  registry_env: RegistryEnv, store: Store, tmp_path: Path, digest: str) -> None:
    private = source(token_registry, "private/app", ref=OCIRef(tag="manifests"))
    denied = reconcile_oci_source(store, private, cache_dir=tmp_path / "cache")
    assert denied.artifact is None
    assert str(denied.error) == (f"registry {token_registry.host} requires credentials for "
                                 "repository private/app (401 UNAUTHORIZED); none were given")
    creds = Credentials("a test", registry_env.user, registry_env.password)
    pulled = reconcile_oci_source(store, private, cache_dir=tmp_path / "cache", credentials=creds)
    assert pulled.artifact is not None and pulled.artifact.revision == f"manifests@{digest}"
    assert [r.scope for r in token_service.requests][-1] == "repository:private/app:pull"
    events = list_events(store, object_kind="OCIRepository")
    assert [e.reason for e in events] == [PULL_FAILED, NEW_ARTIFACT]
    assert events[0].message.startswith(f"failed to pull artifact from 'oci://{token_registry.host}/private/app'")
    dump = "\n".join(sqlite3.connect(store.url.removeprefix("sqlite:///")).iterdump())
    assert registry_env.password not in dump and digest in dump


def test_basic_auth_over_tls_with_the_registrys_ca(open_registry: RunningRegistry,
                                                  basic_registry: RunningRegistry,
                                                  registry_env: RegistryEnv, test_ca: KeyPair,
                                                  tmp_path: Path) -> None:
    repo = repository()
    digest = push_artifact(open_registry.url, repo, "latest", tarball(FILES))
    over_tls = source(basic_registry, repo, insecure=False)
    creds = Credentials("a test", registry_env.user, registry_env.password)
    with httpx.Client(verify=ssl_context(test_ca)) as client:
        artifact = pull_artifact(over_tls, cache_dir=tmp_path / "cache", credentials=creds,
                                 client=client)
        assert artifact.revision == f"latest@{digest}"
        with pytest.raises(SourceError) as wrong:
            pull_artifact(over_tls, cache_dir=tmp_path / "cache",
                          credentials=Credentials("a test", registry_env.user, "wrong-password"),
                          client=client)
    assert "refused the credentials from a test" in str(wrong.value)
    assert "wrong-password" not in str(wrong.value)


# Recording, status and the CLI -------------------------------------------------------------------


def test_a_pull_is_recorded_once_per_artifact_and_status_follows(open_registry: RunningRegistry,
                                                                 store: Store, tmp_path: Path) -> None:
    repo = repository()
    oci = source(open_registry, repo)
    assert object_status(store, oci).message == "not pulled yet"
    digest = push_artifact(open_registry.url, repo, "latest", tarball(FILES))
    first = reconcile_oci_source(store, oci, cache_dir=tmp_path / "cache")
    second = reconcile_oci_source(store, oci, cache_dir=tmp_path / "cache")
    assert first.changed and not second.changed
    recorded = latest_oci_revision(store, "flux-system/manifests")
    assert recorded is not None and recorded.revision == f"latest@{digest}"
    assert (recorded.tag, recorded.digest, recorded.operation) == ("latest", digest, LayerOperation.EXTRACT)
    status = object_status(store, oci)
    assert (status.ready, status.revision) == ("True", f"latest@{digest}")
    corrupt = source(open_registry, repo, ref=OCIRef(tag="gone"))
    reconcile_oci_source(store, corrupt, cache_dir=tmp_path / "cache")
    assert object_status(store, oci).ready == "False"
    reconcile_oci_source(store, oci, cache_dir=tmp_path / "cache")
    assert object_status(store, oci).ready == "True"
    assert [e.reason for e in list_events(store, object_kind="OCIRepository")] == [
        NEW_ARTIFACT, PULL_FAILED, UP_TO_DATE]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def write_rules(root: Path, registry: RunningRegistry, repo: str, namespace: str) -> Path:
    """A repository holding an OCIRepository and a Kustomization that applies its artifact."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "flux.yaml").write_text(f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: manifests
  namespace: flux-system
spec:
  interval: 10m
  url: oci://{registry.host}/{repo}
  insecure: true
  ignore: |
    README.md
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: ./deploy
  prune: true
  targetNamespace: {namespace}
  sourceRef:
    kind: OCIRepository
    name: manifests
""")
    return root


def test_reconcile_get_and_build_from_the_cli(open_registry: RunningRegistry, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    repo = repository()
    digest = push_artifact(open_registry.url, repo, "latest", tarball(FILES))
    rules = write_rules(tmp_path / "rules", open_registry, repo, "apps")
    state, cache = str(tmp_path / "state.db"), str(tmp_path / "cache")
    code, _, err = run(capsys, "--state", state, "build", "kustomization", "apps", "--repo", str(rules),
                       "--workdir", cache)
    assert code == 2 and "pull it with `gitward reconcile source oci flux-system/manifests`" in err
    code, out, err = run(capsys, "--state", state, "reconcile", "source", "oci", "manifests",
                         "--repo", str(rules), "--workdir", cache)
    assert code == 0, err
    assert out.splitlines() == ["► pulling OCIRepository flux-system/manifests (tag latest)",
                                f"✔ pulled revision latest@{digest}"]
    code, out, _ = run(capsys, "--state", state, "get", "sources", "oci", "--repo", str(rules), "-o", "json")
    [row] = json.loads(out)
    assert (row["kind"], row["ready"], row["revision"]) == ("OCIRepository", "True", f"latest@{digest}")
    code, out, err = run(capsys, "--state", state, "build", "kustomization", "apps", "--repo", str(rules),
                         "--workdir", cache, "-o", "json")
    assert code == 0, err
    assert sorted(o["kind"] for o in json.loads(out)) == ["ConfigMap", "Namespace"]


def test_reconcile_kustomization_applies_the_artifact_to_the_cluster(
        open_registry: RunningRegistry, kube_api: KubeAPI, kube_client: kube.ApiClient,
        kube_namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repository()
    files = {"deploy/config.yaml": FILES["deploy/config.yaml"].replace("  namespace: oci-demo\n", ""),
             "README.md": "not a manifest\n"}
    digest = push_artifact(open_registry.url, repo, "latest", tarball(files))
    rules = write_rules(tmp_path / "rules", open_registry, repo, kube_namespace)
    state, cache = str(tmp_path / "state.db"), str(tmp_path / "cache")
    args = ("--state", state, "reconcile", "kustomization", "apps", "--repo", str(rules),
            "--workdir", cache, "--kubeconfig", str(kube_api.kubeconfig))
    code, _, err = run(capsys, *args)
    assert code == 1 and "OCIRepository flux-system/manifests has no recorded artifact yet" in err
    code, out, err = run(capsys, *args, "--with-source")
    assert code == 0, err
    assert f"Kustomization flux-system/apps at latest@{digest}" in out
    core = kube.CoreV1Api(kube_client)
    settings = core.read_namespaced_config_map("settings", kube_namespace)
    assert settings.data == {"colour": "blue"}
    assert settings.metadata.labels["kustomize.toolkit.fluxcd.io/name"] == "apps"
    # A new artifact: the next sync without --with-source keeps the recorded one, with it moves on.
    changed = {**files, "deploy/config.yaml": files["deploy/config.yaml"].replace("blue", "green")}
    newer = push_artifact(open_registry.url, repo, "latest", tarball(changed))
    code, out, err = run(capsys, *args)
    assert code == 0 and f"at latest@{digest}" in out, err
    code, out, err = run(capsys, *args, "--with-source")
    assert code == 0 and f"at latest@{newer}" in out, err
    assert core.read_namespaced_config_map("settings", kube_namespace).data == {"colour": "green"}
    connection = sqlite3.connect(state)
    try:
        rows = connection.execute("SELECT revision FROM oci_revisions ORDER BY id").fetchall()
        applied = connection.execute("SELECT DISTINCT revision FROM cluster_objects").fetchall()
        history = connection.execute(
            "SELECT DISTINCT revision FROM v_object_history WHERE kustomization = 'flux-system/apps'"
        ).fetchall()
    finally:
        connection.close()
    assert rows == [(f"latest@{digest}",), (f"latest@{newer}",)]
    assert applied == [(f"latest@{newer}",)]
    assert {f"latest@{digest}", f"latest@{newer}"} <= {r for (r,) in history}
    code, out, _ = run(capsys, "--state", state, "get", "kustomizations", "--repo", str(rules), "-o", "json")
    [row] = json.loads(out)
    assert row["ready"] == "True" and row["revision"] == f"latest@{newer}"

