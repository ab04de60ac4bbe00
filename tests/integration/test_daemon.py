"""`gitward reconcile` against a running `gitward run`: asked through the store, answered by the
daemon; rules re-read while it runs (from --repo, or from a source with --rules-from); a failure
alerted once; the request store functions on both dialects."""

from __future__ import annotations

import io
import json
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.daemon import SimulatedClock, SimulatedStop
from engine.errors import Problems, StoreError
from engine.model import ObjectKey, RuleSet
from engine.reconcile.images import record_tags
from engine.reconcile.loop import Access, Controller
from engine.reconcile.repo import MarkedTree, read_marked_tree
from engine.reconcile.telemetry import LogFormat, LogLevel, RunLog
from engine.rules.load import load_repo
from engine.store import queries
from engine.store.db import Store, open_store, state_url
from engine.store.leases import running_daemons
from engine.store.requests import answer_requests, get_request, pending_requests, request_reconcile
from tests.conftest import ROOT
from tests.integration.git_env import BareRepo, make_bare_repo, push_commit
from tests.integration.test_loop import call, environ, gitward
from tests.integration.test_notify import Receiver, receiver  # noqa: F401  (fixture)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DEMO = ObjectKey("GitRepository", "flux-system", "demo")
DEADLINE = 60.0
"""How long the daemon gets to do something: a bound on waiting, not a timing assert."""


def test_a_daemon_answers_the_requests_made_before_its_reconcile(store: Store) -> None:
    first = request_reconcile(store, DEMO, "alex@laptop", T0)
    second = request_reconcile(store, DEMO, "sam@desk", T0 + timedelta(seconds=5))
    other = request_reconcile(store, ObjectKey("Kustomization", "flux-system", "apps"), "alex@laptop",
                              T0)
    assert [r.id for r in pending_requests(store)] == [first.id, second.id, other.id]

    answered = answer_requests(store, DEMO, made_before=T0 + timedelta(seconds=1), handled_by="d1",
                               outcome="ok", revision="main@sha1:abc", message="new revision",
                               now=T0 + timedelta(seconds=2))

    assert answered == 1
    done = get_request(store, first.id)
    assert done is not None and (done.outcome, done.revision, done.handled_by) == (
        "ok", "main@sha1:abc", "d1")
    assert done.finished_at == T0 + timedelta(seconds=2) and done.key == DEMO
    assert [r.id for r in pending_requests(store)] == [second.id, other.id]
    assert get_request(store, 10_000) is None


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts `gitward run` (JSON logs to a file, no cluster) and waits until it serves the store."""
    started: list[subprocess.Popen[str]] = []

    def start(repo: Path, state: str, *options: str) -> subprocess.Popen[str]:
        log = (tmp_path / f"daemon{len(started)}.log").open("w")
        process = subprocess.Popen(
            gitward("--state", state, "run", "--repo", str(repo), "--log-format", "json",
                    "--workdir", str(tmp_path / "cache"), *options),
            cwd=ROOT, env=environ(), stdout=subprocess.DEVNULL, stderr=log, text=True)
        started.append(process)
        deadline = time.monotonic() + DEADLINE
        while not _serving(state):
            assert process.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, "gitward run never took its daemon lease"
            time.sleep(0.2)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            process.wait(timeout=60)


def _serving(state: str) -> bool:
    if not Path(state).exists():
        return False
    try:
        with open_store(state_url(state), readonly=True) as store:
            return bool(running_daemons(store, datetime.now(UTC)))
    except StoreError:  # the daemon is still creating it
        return False


def hourly_source(repo: Path, **urls: str) -> Path:
    """Rules with sources fetched hourly: within a test, only a request makes them fetch again."""
    repo.mkdir(exist_ok=True)
    (repo / "sources.rules").write_text("".join(
        f'source git {name} {{\n  url "{url}"\n  branch "main"\n  interval 1h\n}}\n\n'
        for name, url in urls.items()))
    return repo


def wait_for(condition: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {DEADLINE:g}s:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def fetched(state: str, source: str) -> bool:
    """Whether the store holds a revision of `source`."""
    with open_store(state_url(state), readonly=True) as store:
        return queries.latest_git_revision(store, source) is not None


def logged(log: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_reconcile_asks_the_running_daemon_and_prints_its_answer(
        bare_repo: BareRepo, tmp_path: Path,
        daemon: Callable[..., subprocess.Popen[str]]) -> None:
    repo = hourly_source(tmp_path / "rules", demo=bare_repo.url)
    state = str(tmp_path / "state.db")
    daemon(repo, state)
    log = tmp_path / "daemon0.log"
    wait_for(lambda: any(line.get("object") == "flux-system/demo" for line in logged(log)),
             "the first pass did not fetch the source", log)
    newer = push_commit(bare_repo.url, tmp_path / "other", {"README.md": "two\n"}, "Second commit")

    asked = call("--state", state, "reconcile", "source", "git", "demo", "--repo", str(repo))

    assert asked.returncode == 0, asked.stderr
    assert "► asking gitward run (" in asked.stdout
    assert f"✔ GitRepository flux-system/demo reconciled at main@sha1:{newer}" in asked.stdout
    with open_store(state_url(state), readonly=True) as store:
        revision = queries.latest_git_revision(store, "flux-system/demo")
        assert revision is not None and revision.sha == newer
        assert not pending_requests(store)


def test_the_daemon_refuses_what_it_cannot_serve_and_a_stalled_daemon_times_out(
        bare_repo: BareRepo, tmp_path: Path,
        daemon: Callable[..., subprocess.Popen[str]]) -> None:
    repo = hourly_source(tmp_path / "rules", demo=bare_repo.url)
    (repo / "apps.rules").write_text(
        'kustomization apps {\n  source git demo\n  path "./"\n  interval 10m\n}\n')
    state = str(tmp_path / "state.db")
    process = daemon(repo, state)

    no_cluster = call("--state", state, "reconcile", "kustomization", "apps", "--repo", str(repo))
    assert no_cluster.returncode == 1, no_cluster.stdout + no_cluster.stderr
    assert ("✗ Kustomization flux-system/apps: not reconciled: this gitward run has no cluster "
            "configured") in no_cluster.stderr

    assert call("--state", state, "suspend", "source", "git", "demo",
                "--repo", str(repo)).returncode == 0
    suspended = call("--state", state, "reconcile", "source", "git", "demo", "--repo", str(repo))
    assert suspended.returncode == 1 and "is suspended: `gitward resume` it first" in suspended.stderr
    assert call("--state", state, "resume", "source", "git", "demo",
                "--repo", str(repo)).returncode == 0

    process.send_signal(signal.SIGSTOP)  # alive (its lease holds), but answering nothing
    try:
        stalled = call("--state", state, "reconcile", "source", "git", "demo", "--repo", str(repo),
                       "--timeout", "2s")
    finally:
        process.send_signal(signal.SIGCONT)
    assert stalled.returncode == 1
    assert "no answer from gitward run within 2s: request #" in stalled.stderr
    assert "Traceback" not in stalled.stderr
    with open_store(state_url(state), readonly=True) as store:
        [queued] = pending_requests(store)
    assert queued.key == DEMO

    def answered() -> bool:
        with open_store(state_url(state), readonly=True) as store:
            found = get_request(store, queued.id)
            return found is not None and found.outcome == "ok"
    wait_for(answered, "the resumed daemon did not answer the queued request",
             tmp_path / "daemon0.log")


def test_reconcile_notices_a_daemon_killed_while_it_waits(
        bare_repo: BareRepo, tmp_path: Path,
        daemon: Callable[..., subprocess.Popen[str]]) -> None:
    """A daemon SIGKILLed after it was asked answers nothing: `gitward reconcile` sees its lease
    run out (a minute at most) and says so, instead of waiting out its 5m `--timeout`."""
    repo = hourly_source(tmp_path / "rules", demo=bare_repo.url)
    state = str(tmp_path / "state.db")
    process = daemon(repo, state)
    log = tmp_path / "daemon0.log"
    wait_for(lambda: any(line.get("object") == "flux-system/demo" for line in logged(log)),
             "the first pass did not fetch the source", log)
    process.send_signal(signal.SIGSTOP)  # asked, it must not answer before it is killed
    asking = subprocess.Popen(gitward("--state", state, "reconcile", "source", "git", "demo",
                                      "--repo", str(repo), "--timeout", "5m"),
                              cwd=ROOT, env=environ(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def asked() -> bool:
        with open_store(state_url(state), readonly=True) as store:
            return bool(pending_requests(store))
    wait_for(asked, "gitward reconcile did not queue its request", log)
    process.kill()
    process.wait(timeout=60)
    out, err = asking.communicate(timeout=240)  # the bound: less than its own 5m timeout

    assert asking.returncode == 1, out + err
    assert "gitward run stopped before answering" in err
    assert "`gitward reconcile --direct` reconciles GitRepository flux-system/demo here" in err
    assert "Traceback" not in err
    with open_store(state_url(state), readonly=True) as store:
        [queued] = pending_requests(store)  # kept for the next gitward run
    assert queued.key == DEMO


def test_direct_reconciles_here_even_with_a_daemon(
        bare_repo: BareRepo, tmp_path: Path,
        daemon: Callable[..., subprocess.Popen[str]]) -> None:
    repo = hourly_source(tmp_path / "rules", demo=bare_repo.url)
    state = str(tmp_path / "state.db")
    daemon(repo, state)
    done = call("--state", state, "reconcile", "source", "git", "demo", "--repo", str(repo),
                "--direct", "--workdir", str(tmp_path / "here"))
    assert done.returncode == 0, done.stderr
    assert "asking gitward run" not in done.stdout
    assert f"✔ fetched revision main@sha1:{bare_repo.rev('main')}" in done.stdout


def test_the_daemon_reads_changed_rules_and_keeps_the_old_ones_when_broken(
        bare_repo: BareRepo, tmp_path: Path,
        daemon: Callable[..., subprocess.Popen[str]]) -> None:
    repo = hourly_source(tmp_path / "rules", demo=bare_repo.url)
    state = str(tmp_path / "state.db")
    daemon(repo, state)
    log = tmp_path / "daemon0.log"

    (repo / "broken.rules").write_text('source git later {\n  url "x"\n  intervall 1h\n}\n')
    wait_for(lambda: any("unknown keyword" in line["msg"] for line in logged(log)),
             "the broken rules were not reported", log)
    report = next(line for line in logged(log) if "unknown keyword" in line["msg"])
    assert report["level"] == "error" and "broken.rules:3:3" in report["msg"]

    (repo / "broken.rules").write_text(
        f'source git later {{\n  url "{bare_repo.url}"\n  interval 1h\n}}\n')

    wait_for(lambda: fetched(state, "flux-system/later"),
             "the source added to the rules was not fetched", log)
    reloads = [line for line in logged(log) if line["msg"] == "rules reloaded"]
    assert reloads and reloads[-1]["added"] == "1"


def test_a_failure_retried_is_alerted_once(
        tmp_path: Path, receiver: Receiver,  # noqa: F811
        daemon: Callable[..., subprocess.Popen[str]]) -> None:
    repo = tmp_path / "rules"
    repo.mkdir()
    (repo / "rules.rules").write_text(
        f'alert ops {{\n  on failure\n  webhook "{receiver.url}/hook"\n}}\n\n'
        f'source git gone {{\n  url "{(tmp_path / "missing.git").as_uri()}"\n'
        '  interval 1s\n}\n')
    state = str(tmp_path / "state.db")
    daemon(repo, state)
    log = tmp_path / "daemon0.log"
    wait_for(lambda: sum(line.get("outcome") == "failed" for line in logged(log)) >= 3,
             "the source did not fail three times", log)
    assert len([r for r in receiver.requests if r.path == "/hook"]) == 1


def test_reconcile_image_update_commits_and_pushes_the_automations_updates(
        homelab_remote: tuple[BareRepo, Path], tmp_path: Path) -> None:
    bare, repo = homelab_remote
    state = str(tmp_path / "state.db")
    for day, listed in enumerate(("6.5.1\n", "6.5.1\n6.6.0\n6.7.0\n")):  # 6.7.0 is seen later
        tags = tmp_path / f"tags-{day}.txt"
        tags.write_text(listed)
        assert call("--state", state, "images", "import", "podinfo/podinfo", "--tags", str(tags),
                    "--repo", str(repo)).returncode == 0

    done = call("--state", state, "reconcile", "image", "update", "podinfo", "-n", "podinfo",
                "--repo", str(repo), "--workdir", str(tmp_path / "cache"))

    assert done.returncode == 0, done.stderr
    assert "► updating images of ImageUpdateAutomation podinfo/podinfo" in done.stdout
    assert bare.subjects("main") == ["Update podinfo image", "Initial commit"]
    assert "podinfo:6.7.0 # {" in bare.read("cluster/apps/podinfo/deployment.yaml")
    again = call("--state", state, "reconcile", "image", "update", "podinfo", "-n", "podinfo",
                 "--repo", str(repo), "--workdir", str(tmp_path / "cache"))
    assert again.returncode == 0 and bare.subjects("main")[0] == "Update podinfo image"
    assert len(bare.subjects("main")) == 2


def test_rules_from_a_source_follow_its_new_revisions(
        bare_repo: BareRepo, tmp_path: Path,
        daemon: Callable[..., subprocess.Popen[str]]) -> None:
    rules_remote = tmp_path / "rules.git"
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "sources.rules").write_text(
        f'source git rules {{\n  url "{rules_remote.as_uri()}"\n  branch "main"\n'
        '  interval 1s\n}\n')
    remote = make_bare_repo(rules_remote, seed)
    state = str(tmp_path / "state.db")
    process = daemon(seed, state, "--rules-from", "rules")
    log = tmp_path / "daemon0.log"

    push_commit(remote.url, tmp_path / "other", {
        "later.rules": f'source git later {{\n  url "{bare_repo.url}"\n  interval 1h\n}}\n'},
        "Add a source")

    wait_for(lambda: fetched(state, "flux-system/later"), "the source added in git was not fetched",
             log)
    assert process.poll() is None
    assert not (seed / "later.rules").exists()  # read from the fetched revision, not --repo


def test_a_restarted_daemon_resumes_scans_where_the_store_says(tmp_path: Path) -> None:
    """In process, on simulated time: a repository scanned a minute ago is next scanned when its
    interval is up, not at start (a restart must not hit every registry at once)."""
    repo = tmp_path / "rules"
    repo.mkdir()
    (repo / "images.rules").write_text(
        'image repository podinfo/podinfo {\n  image "127.0.0.1:9/podinfo"\n  interval 5m\n}\n')
    problems = Problems()
    rules = load_repo(repo, problems).rules
    assert not problems.errors
    scanned = T0 - timedelta(minutes=1)
    [repository] = rules.image_repositories
    out = io.StringIO()
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        record_tags(store, repository, ["6.5.1"], started_at=scanned, finished_at=scanned)
        clock = SimulatedClock(T0)
        stop = SimulatedStop(clock, end=timedelta(minutes=6).total_seconds(),
                             on_advance=lambda before, after: None)
        log = RunLog(out, LogFormat.JSON, LogLevel.INFO, clock)
        Controller(store, rules, repo, Access(workdir=tmp_path / "cache", holder="test:1"), log,
                   clock=clock, rng=random.Random(1), stop=stop).run()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    scans = [line for line in lines if line.get("kind") == "ImageRepository"]
    assert scans, out.getvalue()
    first = datetime.fromisoformat(scans[0]["time"].replace("Z", "+00:00"))
    assert first == scanned + timedelta(minutes=5)


def test_a_pass_reads_the_marked_files_once_for_every_image_repository_and_automation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In process: three image repositories and an automation on the same checkout read and
    locate its markers once in a `--once` pass (the registry and the source are unreachable:
    each object fails on its own, after reading what it needs)."""
    repo = tmp_path / "rules"
    (repo / "apps").mkdir(parents=True)
    names = ["web", "api", "worker"]
    (repo / "apps.rules").write_text(
        'source git apps/apps {\n  url "file:///nonexistent/apps.git"\n  branch "main"\n}\n\n'
        'image update apps/apps {\n  source git apps/apps\n  path "./apps"\n'
        '  author "bot <bot@example.com>"\n  push "main"\n}\n\n'
        + "".join(f'image repository apps/{n} {{\n  image "127.0.0.1:9/{n}"\n  interval 5m\n}}\n\n'
                  f'image policy apps/{n} {{\n  repository {n}\n  select highest semver ">=1.0.0"\n}}\n\n'
                  for n in names))
    for n in names:
        (repo / "apps" / f"{n}.yaml").write_text(
            f'image: 127.0.0.1:9/{n}:1.0.0 # {{"$imagepolicy": "apps:{n}"}}\n')
    problems = Problems()
    rules = load_repo(repo, problems).rules
    assert not problems.errors
    reads: list[Path] = []

    def counted(root: Path, rules: RuleSet) -> MarkedTree:
        reads.append(root)
        return read_marked_tree(root, rules)

    monkeypatch.setattr("engine.reconcile.repo.read_marked_tree", counted)
    out = io.StringIO()
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        clock = SimulatedClock(T0)
        stop = SimulatedStop(clock, end=3600, on_advance=lambda before, after: None)
        Controller(store, rules, repo, Access(workdir=tmp_path / "cache", holder="test:1"),
                   RunLog(out, LogFormat.JSON, LogLevel.INFO, clock), clock=clock,
                   rng=random.Random(1), stop=stop).run(once=True)
    reconciled = [json.loads(line) for line in out.getvalue().splitlines() if "duration" in line]
    assert [(r["kind"], r["outcome"]) for r in reconciled] == [
        ("GitRepository", "failed"), *[("ImageRepository", "failed")] * 3,
        ("ImageUpdateAutomation", "ok")], out.getvalue()
    # the automation planned on the markers the image repositories' read found
    assert reconciled[-1]["msg"] == "no updates; unknown: apps/api, apps/web, apps/worker"
    assert reads == [repo]
