"""`gitward run` as a process: one pass with `--once`, failures kept apart, a graceful SIGTERM."""

from __future__ import annotations

import io
import json
import os
import random
import selectors
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.clock import utcnow
from engine.evaluate.schedule import Outcome
from engine.model import GitRef, GitSource, RuleSet
from engine.reconcile.heartbeat import LEASE_TTL
from engine.reconcile.loop import Access, Controller
from engine.reconcile.telemetry import LogFormat, LogLevel, RunLog
from engine.store import decisions as policy_decisions, queries
from engine.store.actions import list_actions
from engine.store.db import open_store, state_url
from engine.store.leases import acquire_lease, git_lease_name
from tests.conftest import ROOT
from tests.integration.git_env import BareRepo
from tests.integration.registry_env import free_port

PODINFO = "cluster/apps/podinfo/deployment.yaml"


def gitward(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def environ() -> dict[str, str]:
    """No cluster for these runs: Kustomizations are left out with a warning."""
    return {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "GITWARD_STATE")}


def call(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(gitward(*args), cwd=ROOT, env=environ(), capture_output=True, text=True,
                          timeout=300)


def log_lines(stderr: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def source_rules(repo: Path, **urls: str) -> Path:
    """A rules checkout holding only GitRepositories, each fetched every second."""
    repo.mkdir()
    (repo / "sources.rules").write_text("".join(
        f'source git {name} {{\n  url "{url}"\n  branch "main"\n  interval 1s\n}}\n\n'
        for name, url in urls.items()))
    return repo


def decided_offline(repo: Path, tmp_path: Path) -> str:
    """A store where podinfo's 6.7.0 is known newer than the 6.5.1 git deploys, and every
    registry is suspended (out of reach): the automations decide on the ledger. Its URL."""
    state = str(tmp_path / "state.db")
    for day, listed in enumerate(("6.5.1\n", "6.5.1\n6.6.0\n6.7.0\n")):  # 6.7.0 is seen later
        tags = tmp_path / f"tags-{day}.txt"
        tags.write_text(listed)
        imported = call("--state", state, "images", "import", "podinfo/podinfo", "--tags",
                        str(tags), "--repo", str(repo))
        assert imported.returncode == 0, imported.stderr
    for namespace in ("podinfo", "ledger"):  # the registries are out of reach: decide on the ledger
        held = call("--state", state, "suspend", "image", "repository", "--all", "-n", namespace,
                    "--repo", str(repo))
        assert held.returncode == 0, held.stderr
    return state


def test_once_fetches_the_source_and_pushes_the_image_update(
        homelab_remote: tuple[BareRepo, Path], tmp_path: Path) -> None:
    bare, repo = homelab_remote
    initial = bare.rev("main")
    state = decided_offline(repo, tmp_path)

    done = call("--state", state, "run", "--repo", str(repo), "--once", "--log-format", "json",
                "--workdir", str(tmp_path / "cache"))

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert bare.subjects("main") == ["Update podinfo image", "Initial commit"]
    assert "podinfo:6.7.0 # {" in bare.read(PODINFO)
    with open_store(state_url(state)) as store:
        revision = queries.latest_git_revision(store, "flux-system/flux-system")
        decided = policy_decisions.decisions(store, "podinfo/podinfo", limit=100)
        pushed = queries.list_events(store, object_kind="ImageUpdateAutomation")
    assert revision is not None and revision.sha == initial
    assert [d.selected_tag for d in decided] == ["6.7.0"]  # recorded once, not once per reader
    [event] = [e for e in pushed if e.reason == "CommitPushed"]
    assert event.object_name == "podinfo/podinfo"
    # ledger's registry is never scanned (suspended): its automation says so, once
    [unknown] = [e for e in pushed if e.reason == "PoliciesUnknown"]
    assert unknown.object_name == "ledger/ledger"
    assert unknown.message.startswith("ImagePolicy ledger/ledger is unknown: ImageRepository "
                                      "ledger/ledger has not been scanned yet")
    assert event.message.startswith(f"pushed {bare.rev('main')[:7]} to main: ")
    assert "podinfo:6.5.1 -> ghcr.io/stefanprodan/podinfo:6.7.0" in event.message
    lines = log_lines(done.stderr)
    by_object = {(line["kind"], line.get("object", "")): line for line in lines}
    source = by_object[("GitRepository", "flux-system/flux-system")]
    assert (source["outcome"], source["revision"]) == ("ok", f"main@sha1:{initial}")
    update = by_object[("ImageUpdateAutomation", "podinfo/podinfo")]
    assert (update["outcome"], update["revision"]) == ("ok", bare.rev("main"))
    assert {"time", "level", "duration", "msg"} <= update.keys()
    assert not any(line["kind"] == "ImageRepository" for line in lines)  # suspended
    [warning] = [line for line in lines if line["kind"] == "Kustomization"]
    assert warning["level"] == "warning" and "no cluster configured" in warning["msg"]


def test_an_update_waiting_for_another_writer_of_its_branch_is_held_not_ok(
        homelab_remote: tuple[BareRepo, Path], tmp_path: Path) -> None:
    """Another gitward holds the branch's lease: nothing is pushed, and the run says the
    automation waited (outcome=held, tried again next interval), never `ok`."""
    bare, repo = homelab_remote
    state = decided_offline(repo, tmp_path)
    with open_store(state_url(state)) as store:
        assert acquire_lease(store, git_lease_name(bare.url, "main"), "other-host:1", LEASE_TTL,
                             datetime.now(UTC))

    done = call("--state", state, "run", "--repo", str(repo), "--once", "--log-format", "json",
                "--workdir", str(tmp_path / "cache"))

    assert done.returncode == 0, done.stderr
    [update] = [line for line in log_lines(done.stderr)
                if line["kind"] == "ImageUpdateAutomation" and line.get("object") == "podinfo/podinfo"]
    assert update["outcome"] == "held"
    assert "waiting, not pushed: another gitward (other-host:1) is writing to" in update["msg"]
    assert bare.subjects("main") == ["Initial commit"]
    with open_store(state_url(state)) as store:
        [action] = list_actions(store)
    assert action.status == "skipped" and (action.error or "").startswith("waiting, not pushed")


def test_a_failing_object_is_logged_and_the_others_still_reconcile(
        bare_repo: BareRepo, tmp_path: Path) -> None:
    repo = source_rules(tmp_path / "rules", good=bare_repo.url,
                        gone=(tmp_path / "missing.git").as_uri())
    state = str(tmp_path / "state.db")

    done = call("--state", state, "run", "--repo", str(repo), "--once",
                "--workdir", str(tmp_path / "cache"))

    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    [gone] = [line for line in lines if "object=flux-system/gone" in line]
    [good] = [line for line in lines if "object=flux-system/good" in line]
    assert "level=error" in gone and "outcome=failed" in gone
    assert "outcome=ok" in good and f"revision=main@sha1:{bare_repo.rev('main')}" in good
    with open_store(state_url(state)) as store:
        assert queries.latest_git_revision(store, "flux-system/gone") is None
        assert queries.latest_git_revision(store, "flux-system/good") is not None


def read_lines(stream: object, count: int, within: float) -> list[str]:
    """`count` lines from a pipe, or fewer if the process says nothing for `within` seconds."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
    lines: list[str] = []
    deadline = time.monotonic() + within
    while len(lines) < count and selector.select(max(deadline - time.monotonic(), 0)):
        line = stream.readline()  # type: ignore[attr-defined]
        if not line:
            break
        lines.append(line)
    return lines


def test_sigterm_stops_the_loop_cleanly(bare_repo: BareRepo, tmp_path: Path) -> None:
    repo = source_rules(tmp_path / "rules", demo=bare_repo.url)
    process = subprocess.Popen(
        gitward("--state", str(tmp_path / "state.db"), "run", "--repo", str(repo),
                "--workdir", str(tmp_path / "cache")),
        cwd=ROOT, env=environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # two reconciles of the one source: the loop came back to it on its interval
        first = read_lines(process.stderr, 2, within=60)
        assert len(first) == 2, first
        assert all("object=flux-system/demo" in line and "outcome=ok" in line for line in first)
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, rest
    assert "Traceback" not in rest and "internal error" not in rest


def test_a_failure_that_needs_a_fix_is_permanent_for_the_schedule(tmp_path: Path) -> None:
    """A remote that does not exist is a permanent failure (the schedule waits the interval,
    no backoff); one that does not answer is temporary (retried with backoff)."""
    gone = GitSource("gone", (tmp_path / "missing.git").as_uri(), "flux-system",
                     GitRef(branch="main"), timedelta(minutes=10))
    silent = GitSource("silent", f"http://127.0.0.1:{free_port()}/x.git", "flux-system",
                       GitRef(branch="main"), timedelta(minutes=10))
    repo = tmp_path / "rules"
    repo.mkdir()
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        controller = Controller(store, RuleSet.of([gone, silent]), repo,
                                Access(workdir=tmp_path / "cache", holder="test:1"),
                                RunLog(io.StringIO(), LogFormat.JSON, LogLevel.INFO, utcnow),
                                clock=utcnow, rng=random.Random(1), stop=threading.Event())
        results = {s.name: controller.reconcile(s.key) for s in (gone, silent)}
    assert {name: (r.outcome, r.permanent) for name, r in results.items()} == {
        "gone": (Outcome.FAILED, True), "silent": (Outcome.FAILED, False)}, results
    assert "no git repository" in results["gone"].message
