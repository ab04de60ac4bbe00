"""Two `gitward run` on one store split the work (SQLite and PostgreSQL): a lease per object keeps
them off the same object at the same time, so a tag pushed to the registry reaches the cluster
through exactly one commit, and neither leaves a lease behind when stopped."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubernetes import client as kube

from engine.store.actions import list_actions
from engine.store.db import open_store, state_url
from engine.store.leases import list_leases
from tests.integration.homelab_env import (
    DEADLINE,
    PODINFO,
    HomelabFactory,
    Processes,
    log_lines,
    wait_for_image,
)
from tests.integration.kube_env import KubeAPI
from tests.integration.registry_env import RunningRegistry, seed_tags

pytestmark = pytest.mark.slow

AUTOMATION = "ImageUpdateAutomation"
RESOLUTION = timedelta(milliseconds=5)
"""How far two logged intervals may seem to overlap without a lease having been shared: a log
line's time is cut to the millisecond and its duration rounded to one, and a reconcile's
duration also covers taking and giving back its lease (a transaction each)."""


@dataclass(frozen=True)
class Run:
    """One `gitward run` process and the file its JSON log goes to."""

    name: str
    process: subprocess.Popen[str]
    log: Path


@dataclass(frozen=True)
class Reconcile:
    """One reconcile a process carried out, as the interval it ran in."""

    run: str
    kind: str
    object: str
    start: datetime
    end: datetime


def reconciles(run: Run) -> list[Reconcile]:
    """The reconciles `run` logged, those it left to the lease holder (`held`) left out: a line's
    time is when the reconcile ended, its duration how long it took."""
    found = []
    for line in log_lines(run.log.read_text()):
        if line.get("outcome") not in ("ok", "failed") or "duration" not in line:
            continue
        end = datetime.fromisoformat(line["time"])
        took = timedelta(seconds=float(line["duration"].removesuffix("s")))
        found.append(Reconcile(run.name, line["kind"], line["object"], end - took, end))
    return found


def wait_for_reconcile(run: Run, kind: str, after: datetime) -> None:
    """Wait until `run` has reconciled a `kind` it started after `after`; fail (with its log) at
    the deadline or when it exits."""
    deadline = time.monotonic() + DEADLINE
    while not any(r.kind == kind and r.start > after for r in reconciles(run)):
        if run.process.poll() is not None:
            pytest.fail(f"gitward run {run.name} exited with {run.process.returncode}:\n"
                        f"{run.log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"gitward run {run.name} reconciled no {kind} after {after} within "
                        f"{DEADLINE:g}s:\n{run.log.read_text()[-6000:]}")
        time.sleep(0.5)


def overlapping(done: list[Reconcile]) -> list[str]:
    """Reconciles of one object by different processes whose intervals overlap, one line a pair."""
    by_object: dict[tuple[str, str], list[Reconcile]] = defaultdict(list)
    for r in done:
        by_object[r.kind, r.object].append(r)
    return [f"{x.kind} {x.object}: {x.run} {x.start:%T.%f}-{x.end:%T.%f}, "
            f"{y.run} {y.start:%T.%f}-{y.end:%T.%f}"
            for rs in by_object.values() for x in rs for y in rs
            if x.run < y.run and x.start + RESOLUTION < y.end and y.start + RESOLUTION < x.end]


def test_two_runs_on_one_store_split_the_work(
        homelab: HomelabFactory, url: str, open_registry: RunningRegistry, kube_api: KubeAPI,
        kube_client: kube.ApiClient, running: Processes, tmp_path: Path) -> None:
    lab = homelab(open_registry.host, url)
    initial = lab.bare.rev("main")
    name = lab.image.split("/", 1)[1]
    seed_tags(open_registry.url, name, ["6.5.1"])
    runs = []
    for who in ("a", "b"):
        log = tmp_path / f"run-{who}.log"
        argv = lab.gitward("run", "--repo", str(lab.repo), "--workdir", str(tmp_path / f"work-{who}"),
                           "--kubeconfig", str(kube_api.kubeconfig), "--log-format", "json")
        runs.append(Run(who, running(argv, log), log))
    first = runs[0]

    wait_for_image(kube_client, f"{lab.image}:6.5.1", first.process, first.log)
    assert lab.bare.rev("main") == initial  # 6.5.1 is what git already deploys: no commit
    seed_tags(open_registry.url, name, ["6.6.0"])
    wait_for_image(kube_client, f"{lab.image}:6.6.0", first.process, first.log)
    pushed_by = datetime.now(UTC)
    for run in runs:  # each gets its turn at the automation once the commit is in the remote
        wait_for_reconcile(run, AUTOMATION, pushed_by)

    for run in runs:
        run.process.send_signal(signal.SIGTERM)
    for run in runs:
        assert run.process.wait(timeout=60) == 0, run.log.read_text()
        stderr = run.log.read_text()
        assert "Traceback" not in stderr and "internal error" not in stderr, stderr

    # one gitward commit for the new tag, on top of the seed: nothing doubled, nothing rewritten
    pushed = lab.bare.rev("main")
    assert lab.bare.log("main") == [pushed, initial]
    assert lab.bare.subjects("main") == ["Update podinfo image", "Initial commit"]
    assert f"image: {lab.image}:6.6.0 # {{" in lab.bare.read(PODINFO)

    done = [r for run in runs for r in reconciles(run)]
    for run in runs:
        assert any(line.get("outcome") == "ok" for line in log_lines(run.log.read_text())), \
            f"gitward run {run.name} reconciled nothing:\n{run.log.read_text()}"
    shared = ({(r.kind, r.object) for r in done if r.run == "a"}
              & {(r.kind, r.object) for r in done if r.run == "b"})
    assert shared, "no object was reconciled by both processes: the lease was never contended"
    assert overlapping(done) == []

    holders = tuple(f"{socket.gethostname()}:{run.process.pid}:" for run in runs)
    with open_store(state_url(lab.state)) as store:
        commits = [a for a in list_actions(store, limit=10_000)
                   if a.type == "commit" and a.status == "done"]
        leases = list_leases(store)
    assert [a.payload.get("commit") for a in commits] == [pushed], commits
    assert [lease for lease in leases if lease.holder.startswith(holders)] == []
