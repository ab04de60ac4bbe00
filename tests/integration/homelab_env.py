"""examples/homelab wired to the test parts, and `gitward run` processes to drive it.

The end-to-end tests share this: a bare remote made from examples/homelab with podinfo taken
from a test registry and every interval a second or two, a state store (a SQLite path or any
store URL `--state` accepts), `gitward run` subprocesses logging to files, and the API server
polled for podinfo's image. The fixtures `homelab` and `running` (conftest.py) are built on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from tests.conftest import EXAMPLES, ROOT
from tests.integration.git_env import BareRepo, make_bare_repo
from tests.integration.kube_env import KubeAPI

PODINFO = "cluster/apps/podinfo/deployment.yaml"
DEADLINE = 90.0
"""How long the loop gets to carry a change through: a bound on waiting, not a timing assert."""


@dataclass(frozen=True)
class Homelab:
    """examples/homelab wired to the test parts: its bare remote, the rules checkout it was made
    from, the image (registry host and repository) podinfo is updated from, the state store (a
    SQLite path or a store URL, as `--state` takes it) and the default workdir."""

    bare: BareRepo
    repo: Path
    image: str
    state: str
    workdir: Path

    def gitward(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "engine", "--state", self.state, *args]

    def call(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.gitward(*args), check=False, cwd=ROOT, env=environ(),
                              capture_output=True, text=True, timeout=300)

    def import_tags(self, repo: Path, *scans: str) -> None:
        """Record podinfo's tags as `images import` does, one scan per argument (tags separated
        by newlines): a tag first seen in a later scan is newer to the rollback gate, which finds
        no build time for images the registry does not hold."""
        for number, listed in enumerate(scans):
            tags = self.workdir.parent / f"tags-{number}.txt"
            tags.write_text(listed)
            done = self.call("images", "import", "podinfo/podinfo", "--tags", str(tags),
                             "--repo", str(repo))
            assert done.returncode == 0, done.stderr

    def run_once(self, kube_api: KubeAPI) -> subprocess.CompletedProcess[str]:
        done = self.call("run", "--once", "--repo", str(self.repo), "--workdir", str(self.workdir),
                         "--kubeconfig", str(kube_api.kubeconfig), "--log-format", "json")
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
        return done


class HomelabFactory(Protocol):
    def __call__(self, registry_host: str, state: str | None = None) -> Homelab: ...


def environ() -> dict[str, str]:
    """This process's environment without what would point gitward elsewhere than its flags."""
    return {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "GITWARD_STATE")}


def replaced(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}: update this test"
    path.write_text(text.replace(old, new))


def make_homelab(root: Path, registry_host: str, state: str) -> Homelab:
    """examples/homelab under `root`, podinfo taken from `registry_host` (plain HTTP) under a
    repository of its own, every interval a second or two, the bare repo made from that; the
    ledger app (its registry is out of reach) suspended in the store `state`."""
    seed = root / "seed"
    shutil.copytree(EXAMPLES / "homelab", seed)
    bare_path = root / "homelab.git"
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
    lab = Homelab(make_bare_repo(bare_path, seed), seed, image, state, root / "cache")
    for kind in ("repository", "update"):
        held = lab.call("suspend", "image", kind, "ledger", "-n", "ledger", "--repo", str(seed),
                        "--reason", "ghcr.io is out of reach in the tests")
        assert held.returncode == 0, held.stderr
    return lab


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


@dataclass
class Processes:
    """Starts `gitward run` (any argv) with stderr to a file; `kill_all` ends those still running."""

    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def __call__(self, argv: list[str], log: Path) -> subprocess.Popen[str]:
        with log.open("w") as out:
            process = subprocess.Popen(argv, cwd=ROOT, env=environ(), stdout=subprocess.DEVNULL,
                                       stderr=out, text=True)
        self.started.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


def log_lines(text: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
