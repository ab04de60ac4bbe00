"""Digests and build times from the real registry, and the gates that use them.

Images are pushed by the fixtures with configurations that say when they were built, one of
them as an image index; every scan here lists all tags at once, so the ledger's first sightings
cannot tell which image is older and the build times must.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from engine.cli import main
from engine.errors import Problems
from engine.model import Gate
from engine.observe.imageinfo import image_config, manifest_digest
from engine.observe.registryhttp import ImageName, RegistryError, RegistrySession
from engine.reconcile.images import record_tags
from engine.reconcile.imagefacts import RegistryAccess
from engine.reconcile.repo import read_marked_tree
from engine.reconcile.updates import plan_checkout
from engine.rules.load import load_repo
from engine.store import queries
from engine.store.db import open_store, state_url
from tests.integration.homelab_env import HomelabFactory, log_lines
from tests.integration.oci_env import push_index
from tests.integration.registry_env import PagingProxy, RunningRegistry, free_port, seed_tags
from tests.integration.test_notify import Receiver, receiver  # noqa: F401 - a fixture

NOV = "2025-11-03T11:30:00Z"
DEC = "2025-12-01T00:00:00Z"
JAN = "2026-01-10T08:00:00.123456789Z"


def session(host: str, repository: str) -> RegistrySession:
    return RegistrySession(ImageName(host, repository, insecure=True), None,
                           httpx.Client(trust_env=False), 30, 1, doing="testing", request="a test")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_head_names_a_tag_s_digest_and_an_index_s_and_the_config_tells_the_build_time(
        open_registry: RunningRegistry, token_registry: RunningRegistry) -> None:
    name = f"facts/{uuid.uuid4().hex[:8]}"
    pushed = seed_tags(open_registry.url, name, ["1.0.0", "1.1.0"], created={"1.1.0": JAN})
    index = push_index(open_registry.url, name, "2.0.0", pushed["1.1.0"])
    registry = session(open_registry.host, name)
    assert manifest_digest(registry, "1.0.0") == pushed["1.0.0"]
    assert manifest_digest(registry, "2.0.0") == index  # the index's, not its image's
    built = datetime(2026, 1, 10, 8, 0, 0, 123456, tzinfo=UTC)
    assert image_config(registry, pushed["1.1.0"]).created == built
    assert image_config(registry, index).created == built  # read through the index
    assert image_config(registry, pushed["1.0.0"]).created is None  # its config says nothing
    with pytest.raises(RegistryError, match=f"has no image {open_registry.host}/{name}:9.9.9"):
        manifest_digest(registry, "9.9.9")
    # Bearer tokens, as ghcr.io and Docker Hub ask for them
    public = seed_tags(open_registry.url, "public/app", ["1.0.0"])
    assert manifest_digest(session(token_registry.host, "public/app"), "1.0.0") == public["1.0.0"]


RULES = '''
source git flux-system {
  url "ssh://git@example.com/org/fleet"
}
image repository apps/build {
  image "HOST/NAME-build"
  insecure true
}
image policy apps/build {
  repository build
  select highest alphabetical
}
image repository apps/web {
  image "HOST/NAME-web"
  insecure true
}
image policy apps/web {
  repository web
  select highest semver ">=1.0.0"
}
image update apps/apps {
  source git flux-system/flux-system
  author "bot <bot@example.com>"
  push "main"
}
'''


def fleet(root: Path, host: str, name: str, files: dict[str, str], rules: str = RULES) -> Path:
    root.mkdir()
    (root / "fleet.rules").write_text(rules.replace("HOST", host).replace("NAME", name))
    for path, text in files.items():
        (root / path).write_text(text.replace("HOST", host).replace("NAME", name))
    return root


def test_a_tag_built_before_the_deployed_one_is_held_and_each_image_is_read_once(
        open_registry: RunningRegistry, paging_proxy: Callable[..., PagingProxy], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`v9` sorts above `v10` but was built a month before it: alphabetical asc selects it."""
    name = f"chrono/{uuid.uuid4().hex[:8]}"
    seed_tags(open_registry.url, f"{name}-build", ["v9", "v10"], created={"v9": DEC, "v10": JAN})
    seed_tags(open_registry.url, f"{name}-web", ["1.0.0", "1.1.0"],
              created={"1.0.0": NOV, "1.1.0": JAN})
    proxy = paging_proxy(open_registry)
    repo = fleet(tmp_path / "fleet", proxy.host, name, {
        "build.yaml": 'image: HOST/NAME-build:v10 # {"$imagepolicy": "apps:build"}\n',
        "web.yaml": 'image: HOST/NAME-web:1.0.0 # {"$imagepolicy": "apps:web"}\n'})
    state = str(tmp_path / "state.db")

    code, out, err = run(capsys, "--state", state, "plan", "--repo", str(repo), "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    [action] = report["actions"]
    assert [f["new"] for f in action["files"]] == [f"{proxy.host}/{name}-web:1.1.0"]
    [gate] = report["gates"]
    assert (gate["gate"], gate["current"], gate["proposed"]) == ("rollback", "v10", "v9")
    assert gate["reason"].startswith(
        "v9 was built 2025-12-01T00:00:00Z, before v10, the image git deploys "
        "(2026-01-10T08:00:00Z; the images' creation times in the registry): a rollback")
    read = [r.path for r in proxy.records if "/manifests/" in r.path or "/blobs/" in r.path]
    assert sum("/blobs/" in p for p in read) == 4  # one configuration per image, four images
    assert sum("/manifests/" in p for p in read) == 8  # a HEAD (the digest) and a GET per image
    with sqlite3.connect(state) as db:
        built = dict(db.execute("SELECT digest, created FROM image_configs").fetchall())
        digests = dict(db.execute("SELECT tag, digest FROM image_tags WHERE digest IS NOT NULL"))
    assert len(built) == 4 and set(digests) == {"v9", "v10", "1.0.0", "1.1.0"}
    assert built[digests["v9"]].startswith("2025-12-01 00:00:00")

    proxy.records.clear()
    code, out, err = run(capsys, "--state", state, "plan", "--repo", str(repo))
    assert code == 0 and "rollback: v9 was built 2025-12-01T00:00:00Z" in err
    assert not [r for r in proxy.records if "/manifests/" in r.path or "/blobs/" in r.path]


def test_registry_out_of_reach_for_the_configs_is_said_not_guessed(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    repo = fleet(tmp_path / "fleet", host, "gone/app", {
        "build.yaml": 'image: HOST/NAME-build:v10 # {"$imagepolicy": "apps:build"}\n'})
    problems = Problems()
    rules = load_repo(repo, problems).rules
    [repository] = [r for r in rules.image_repositories if r.name == "build"]
    now = datetime.now(UTC)
    with open_store(state_url(str(tmp_path / "state.db"))) as store:
        record_tags(store, repository, ["v9", "v10"], started_at=now, finished_at=now)
        planned = plan_checkout(read_marked_tree(repo, rules), rules, store, now, record=True,
                                access=RegistryAccess())
    [gate] = planned.plan.gates
    assert gate.gate is Gate.ROLLBACK and planned.plan.actions == ()
    assert gate.reason.startswith("cannot tell whether v9 is older than v10, the image git "
                                  "deploys: no creation times to compare (v9: the registry could "
                                  f"not be read: cannot reach registry {host}")
    assert "the ledger first saw both in the same scan" in gate.reason


PINS = '''
source git flux-system {
  url "ssh://git@example.com/org/fleet"
}
image repository apps/app {
  image "HOST/NAME"
  insecure true
}
image policy apps/reflect {
  repository app
  select highest semver ">=1.0.0"
  digest if-not-present
}
image policy apps/plain {
  repository app
  select highest semver ">=1.0.0"
}
image update apps/apps {
  source git flux-system/flux-system
  author "bot <bot@example.com>"
  push "main"
}
'''

VALUES = '''\
reflect:
  image: HOST/NAME:1.0.0 # {"$imagepolicy": "apps:reflect"}
  tag: 1.0.0 # {"$imagepolicy": "apps:reflect:tag"}
  digest: "" # {"$imagepolicy": "apps:reflect:digest"}
plain:
  image: HOST/NAME:1.0.0@OLD # {"$imagepolicy": "apps:plain"}
  tag: 1.0.0 # {"$imagepolicy": "apps:plain:tag"}
  digest: OLD # {"$imagepolicy": "apps:plain:digest"}
'''


def test_digests_follow_the_tag_to_an_image_index_and_pins_are_never_blanked(
        open_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = f"pins/{uuid.uuid4().hex[:8]}"
    pushed = seed_tags(open_registry.url, name, ["1.0.0", "amd64-2.0.0"],
                       created={"1.0.0": NOV, "amd64-2.0.0": JAN})
    index = push_index(open_registry.url, name, "2.0.0", pushed["amd64-2.0.0"])
    repo = fleet(tmp_path / "fleet", open_registry.host, name,
                 {"values.yaml": VALUES.replace("OLD", pushed["1.0.0"])}, PINS)
    state = str(tmp_path / "state.db")

    code, out, err = run(capsys, "--state", state, "images", "update", "--repo", str(repo),
                         "--no-commit")
    assert code == 0, err
    image = f"{open_registry.host}/{name}"
    assert (repo / "values.yaml").read_text() == (
        "reflect:\n"
        f'  image: {image}:2.0.0@{index} # {{"$imagepolicy": "apps:reflect"}}\n'
        '  tag: 2.0.0 # {"$imagepolicy": "apps:reflect:tag"}\n'
        f'  digest: "{index}" # {{"$imagepolicy": "apps:reflect:digest"}}\n'
        "plain:\n"
        f'  image: {image}:2.0.0@{index} # {{"$imagepolicy": "apps:plain"}}\n'
        '  tag: 2.0.0 # {"$imagepolicy": "apps:plain:tag"}\n'
        f'  digest: {index} # {{"$imagepolicy": "apps:plain:digest"}}\n')
    assert "Flux would blank it" in err
    assert "ImagePolicy apps/plain does not reflect digests (digestReflectionPolicy Never): " \
           "Flux would strip it from the reference" in err
    with sqlite3.connect(state) as db:
        [(recorded,)] = db.execute("SELECT digest FROM image_tags WHERE tag = '2.0.0'").fetchall()
    assert recorded == index


def test_run_holds_a_rollback_and_warns_once_in_log_event_and_alert(
        homelab: HomelabFactory, open_registry: RunningRegistry, receiver: Receiver,  # noqa: F811
        tmp_path: Path) -> None:
    """podinfo 6.6.0 was built before 6.5.1, which git deploys: semver selects it anyway."""
    lab = homelab(open_registry.host)
    seed_tags(open_registry.url, lab.image.split("/", 1)[1], ["6.5.1", "6.6.0"],
              created={"6.5.1": JAN, "6.6.0": DEC})
    (lab.repo / "alerts.rules").write_text(
        f'alert ops {{\n  on failure\n  webhook "{receiver.url}/hook"\n}}\n')
    initial = lab.bare.rev("main")
    held = []
    for _ in range(2):
        done = lab.call("run", "--once", "--repo", str(lab.repo), "--workdir", str(lab.workdir),
                        "--log-format", "json")
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        held.append([line for line in log_lines(done.stderr) if line["msg"].startswith("update held")])
    assert lab.bare.rev("main") == initial
    [first], second = held
    assert second == []
    assert (first["level"], first["kind"], first["object"]) == ("warning", "ImagePolicy",
                                                                "podinfo/podinfo")
    assert first["msg"].startswith("update held: rollback: 6.6.0 was built 2025-12-01T00:00:00Z, "
                                   "before 6.5.1, the image git deploys")
    assert (first["current"], first["proposed"]) == ("6.5.1", "6.6.0")
    [alert] = receiver.requests
    body = json.loads(alert.body)
    assert (body["event"], body["name"], body["revision"]) == ("failure", "podinfo", "6.6.0")
    assert body["title"] == "gitward: ImagePolicy podinfo/podinfo: update held by a rollback"
    assert body["changes"][0]["gate"] == "rollback"
    with open_store(state_url(lab.state)) as store:
        events = [e for e in queries.list_events(store, object_kind="ImagePolicy")
                  if e.reason == "UpdateHeld"]
    assert len(events) == 1 and events[0].message.startswith(
        "6.5.1 -> 6.6.0 held (cluster/apps/podinfo/deployment.yaml:20): rollback: 6.6.0 was built")
