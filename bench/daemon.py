"""`gitward run`'s memory after an hour of simulated intervals, on a copy of examples/homelab.

The subject is a real `Controller`, built as `gitward run` builds it, reconciling examples/homelab
wired to local parts: a throw-away bare git repository (the GitRepository, fetched every 1m), a
local docker-registry (both ImageRepositories, scanned every 5m; both automations, every 5m) and,
when its binaries are built, a kube-apiserver (the Kustomization, applied every 10m). Time is
simulated: the loop sleeps through `stop.wait(seconds)` and reads its clock, so a `SimulatedStop`
advances a `SimulatedClock` by each wait and returns at once. Every reconcile runs for real.
Halfway through, new tags are pushed to the registry, so the automations commit and push.

The Controller runs in a child interpreter (`python -m bench.daemon CONFIG`), which is the daemon
being measured: the bench process holds the benchmarks run before this one, and the test parts
(registry helpers, certificates) a daemon never loads. The child reports VmRSS and ru_maxrss
after the first pass, every sixth of the run, and at the end. The baseline is the VmRSS of a fresh
interpreter that has imported engine.cli.run, what every `gitward run` holds before its first
reconcile; the ratio says what running added, and the growth from the first pass to the end is
where a leak would show.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from bench import BenchError, Result, Timing
from engine.errors import Problems
from engine.cli.state import holder_name
from engine.observe.cluster import connect, read_object
from engine.reconcile.live import secret_reader
from engine.reconcile.loop import Access, Controller
from engine.reconcile.telemetry import LogFormat, LogLevel, RunLog
from engine.rules.load import load_repo
from engine.store import queries
from engine.store.db import open_store, state_url
from tests.integration.git_env import BareRepo, GitEnvError, make_bare_repo
from tests.integration.kube_env import KubeAPI, KubeBinaries, KubeEnvError

FULL_MINUTES, FULL_PUSH_AT = 60, 30
QUICK_MINUTES, QUICK_PUSH_AT = 15, 2
"""Simulated minutes of a run, and the minute new tags are pushed (quick: early enough for the
5m scan and automation to commit within the run)."""
SAMPLES = 6
"""RSS samples per run besides the first pass (every 10 simulated minutes of the full hour)."""
SEED = 20240706
MIB = "MiB"
"""The unit of the daemon's lines: their value columns hold MiB, not seconds (see format_table)."""
CHILD_DEADLINE = 1800.0
"""Wall seconds the child gets for its simulated run before it is killed: a bound, not a goal."""

ROOT = Path(__file__).resolve().parents[1]
HOMELAB = ROOT / "examples" / "homelab"
PODINFO_DEPLOYMENT = "cluster/apps/podinfo/deployment.yaml"
LEDGER_DEPLOYMENT = "cluster/apps/ledger/deployment.yaml"
PODINFO_TAG, PODINFO_PUSHED = "6.5.1", "6.6.0"
LEDGER_TAG, LEDGER_PUSHED = "20251103-1130-sha-4d5e6f7", "20251104-0900-sha-0a1b2c3"
BASELINE_CODE = (
    "import resource, engine.cli.run\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    "print(open('/proc/self/status').read())\n"
)
BASELINE_NAME = "VmRSS of a fresh interpreter that imported engine.cli.run (subprocess; median of --runs)"


# Simulated time --------------------------------------------------------------------------------


class SimulatedClock:
    """A clock that moves only when told: `start` plus the simulated seconds so far."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.elapsed = 0.0

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)


class SimulatedStop(threading.Event):
    """The loop's stop event: a wait advances `clock` by its timeout and returns at once.

    `on_advance(before, after)` runs on each advance (simulated seconds), before the wait returns;
    the event sets itself once `end` seconds have passed. Waits from any thread but the one that
    created it (a helper thread of the loop, say) are real waits: they must not move the clock.
    """

    def __init__(self, clock: SimulatedClock, end: float,
                 on_advance: Callable[[float, float], None]) -> None:
        super().__init__()
        self.clock = clock
        self.end = end
        self.on_advance = on_advance
        self._owner = threading.get_ident()

    def wait(self, timeout: float | None = None) -> bool:
        if threading.get_ident() != self._owner:
            return super().wait(timeout)
        if self.is_set():
            return True
        before = self.clock.elapsed
        after = self.end if timeout is None else min(before + max(timeout, 0.0), self.end)
        self.clock.elapsed = after
        self.on_advance(before, after)
        if after >= self.end:
            self.set()
        return self.is_set()


# Memory ----------------------------------------------------------------------------------------


def vm_rss_kib(status: str) -> int:
    """VmRSS, in KiB, from the text of /proc/<pid>/status."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError("/proc/self/status has no VmRSS line (not Linux?)")


def _own_rss() -> tuple[int, int]:
    """(VmRSS, ru_maxrss) of this process, in KiB."""
    return (vm_rss_kib(Path("/proc/self/status").read_text()),
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


@dataclass(frozen=True)
class Sample:
    """The daemon's memory at one point of the simulated run."""

    label: str
    minute: float
    vm_rss: int
    max_rss: int
    reconciles: int

    @property
    def mib(self) -> float:
        return self.vm_rss / 1024


# The child: the daemon under measurement ---------------------------------------------------------


class _Reporter:
    """The child's side of the conversation: samples out, push requests answered on stdin."""

    def __init__(self, log: Path, minutes: int, push_at: float) -> None:
        self.log = log
        self.push_at = push_at * 60
        self.total = minutes * 60
        self.every = self.total / SAMPLES
        self.first_pass_done = False

    def advanced(self, before: float, after: float) -> None:
        if not self.first_pass_done:
            self.first_pass_done = True
            self.sample("first pass", before)
        if before < self.push_at <= after:
            _send({"event": "push", "minute": self.push_at / 60})
            if sys.stdin.readline().strip() != "pushed":
                raise BenchError("the bench did not confirm the mid-run push")
        mark = (before // self.every + 1) * self.every
        while mark <= after and mark < self.total:  # the end is sampled after the loop stops
            self.sample(f"{mark / 60:g} min", mark)
            mark += self.every

    def sample(self, label: str, at: float) -> None:
        vm_rss, max_rss = _own_rss()
        with self.log.open() as lines:
            reconciles = sum(1 for line in lines if '"duration"' in line)
        _send({"event": "sample", "label": label, "minute": at / 60, "vm_rss": vm_rss,
               "max_rss": max_rss, "reconciles": reconciles})


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve(config: dict[str, Any]) -> None:
    """Run the Controller for `config["minutes"]` simulated minutes, reporting samples on stdout."""
    import engine.cli.run  # noqa: F401  # what every `gitward run` has loaded: the baseline holds it too

    repo = Path(config["repo"])
    problems = Problems()
    rules = load_repo(repo, problems).rules
    problems.raise_if_errors()
    clock = SimulatedClock(datetime.now(UTC))
    log_path = Path(config["log"])
    reporter = _Reporter(log_path, config["minutes"], config["push_at"])
    stop = SimulatedStop(clock, config["minutes"] * 60, reporter.advanced)
    with ExitStack() as stack:
        log_stream: TextIO = stack.enter_context(log_path.open("w"))
        store = stack.enter_context(open_store(state_url(config["state"])))
        cluster = (stack.enter_context(connect(config["kubeconfig"]))
                   if config["kubeconfig"] else None)
        access = Access(workdir=Path(config["workdir"]),
                        holder=holder_name(),
                        cluster=cluster, read_secret=secret_reader(cluster) if cluster else None)
        controller = Controller(
            store=store, rules=rules, repo=repo, access=access,
            log=RunLog(log_stream, LogFormat.JSON, LogLevel.INFO, clock),
            clock=clock, rng=random.Random(SEED), stop=stop)
        controller.run()
        reporter.sample("end", clock.elapsed)


# The bench side: the world around the daemon ----------------------------------------------------


@dataclass
class _World:
    """examples/homelab wired to local parts, and what the run left out."""

    seed: Path
    bare: BareRepo
    state: Path
    registry_url: str | None
    kubeconfig: Path | None

    @property
    def registry_host(self) -> str | None:
        return self.registry_url.split("://", 1)[1] if self.registry_url else None

    def image(self, app: str) -> str:
        return f"{self.registry_host}/homelab/{app}"


def podinfo_tags() -> list[str]:
    """What podinfo's repository holds at the start: 6.5.1 is the highest in `>=6.0.0 <7.0.0`."""
    patches = {0: 4, 1: 9, 2: 4, 3: 7, 4: 2, 5: 2}
    tags = [f"6.{minor}.{patch}" for minor, count in patches.items() for patch in range(count)]
    tags += ["5.2.1", "5.2.2", "7.0.0", "7.0.1", "latest"]
    tags += [f"sha256-{n:064x}.sig" for n in range(1, 4)]
    return tags


def ledger_tags() -> list[str]:
    """What the ledger's repository holds at the start: the deployed build is the newest."""
    rng = random.Random(SEED)
    tags = [LEDGER_TAG]
    for day in range(1, 32):
        for hour in (9, 14):
            tags.append(f"202510{day:02d}-{hour:02d}{rng.randrange(60):02d}-sha-{rng.getrandbits(28):07x}")
    tags += [f"sha-{rng.getrandbits(28):07x}" for _ in range(5)]
    tags += [f"{LEDGER_TAG}.sig"]
    return tags


def _replaced(seed: Path, rel: str, old: str, new: str) -> None:
    path = seed / rel
    text = path.read_text()
    if old not in text:
        raise BenchError(f"{rel} of examples/homelab no longer holds {old!r}: update bench/daemon.py")
    path.write_text(text.replace(old, new, 1))


def _wire(base: Path, registry_url: str | None, kubeconfig: Path | None) -> _World:
    """Copy examples/homelab below `base`: its source fetched from a bare repo made from the
    copy, its images from the local registry (if any). Intervals stay as the example has them."""
    seed, bare_path = base / "seed", base / "homelab.git"
    shutil.copytree(HOMELAB, seed)
    world = _World(seed, BareRepo(bare_path), base / "state.db", registry_url, kubeconfig)
    _replaced(seed, "cluster/system/flux-system/gotk-sync.yaml",
              "ssh://git@github.com/example/homelab", bare_path.as_uri())
    if registry_url is not None:
        podinfo, ledger = world.image("podinfo"), world.image("ledger")
        _replaced(seed, "cluster/apps/podinfo/image-repository.yaml",
                  "  image: ghcr.io/stefanprodan/podinfo\n",
                  f"  image: {podinfo}\n  insecure: true\n")
        _replaced(seed, PODINFO_DEPLOYMENT, f"ghcr.io/stefanprodan/podinfo:{PODINFO_TAG}",
                  f"{podinfo}:{PODINFO_TAG}")
        _replaced(seed, "cluster/apps/ledger/ledger.rules", '"ghcr.io/example/ledger"\n',
                  f'"{ledger}"\n  insecure true\n')
        _replaced(seed, LEDGER_DEPLOYMENT, f"ghcr.io/example/ledger:{LEDGER_TAG}",
                  f"{ledger}:{LEDGER_TAG}")
    try:
        world.bare = make_bare_repo(bare_path, seed)
    except GitEnvError as err:
        raise BenchError(f"the bare repository could not be made: {err}") from err
    problems = Problems()
    rules = load_repo(seed, problems).rules
    if problems.errors:
        raise BenchError(f"the wired copy of examples/homelab does not load: "
                         f"{problems.errors[0].render(excerpt=False)}")
    if registry_url is None:
        with open_store(state_url(str(world.state))) as store:
            for key in [r.key for r in rules.image_repositories] + [u.key for u in rules.image_updates]:
                queries.suspend(store, key.kind, key.ref, reason="bench: no local docker-registry")
    return world


@contextmanager
def _registry(base: Path) -> Iterator[str | None]:
    """A local docker-registry seeded with both repositories' tags; None when not installed."""
    # imported here, not at the top: the child (the daemon measured) must not load them
    from tests.integration.registry_env import (
        RegistryEnvError,
        seed_tags,
        start_registry,
    )

    binary = shutil.which("docker-registry")
    if binary is None:
        yield None
        return
    storage = base / "registry"
    storage.mkdir()
    try:
        registry = start_registry(binary, base, storage, name="daemon-registry")
    except RegistryEnvError as err:
        raise BenchError(f"the docker-registry could not be started: {err}") from err
    try:
        seed_tags(registry.url, "homelab/podinfo", podinfo_tags())
        seed_tags(registry.url, "homelab/ledger", ledger_tags())
        yield registry.url
    finally:
        registry.stop()


def _push_new_tags(registry_url: str | None) -> None:
    if registry_url is None:
        return
    from tests.integration.registry_env import seed_tags

    seed_tags(registry_url, "homelab/podinfo", [PODINFO_PUSHED])
    seed_tags(registry_url, "homelab/ledger", [LEDGER_PUSHED])


@contextmanager
def _kube() -> Iterator[Path | None]:
    """A fresh kube-apiserver's kubeconfig; None when its binaries are not built."""
    try:
        binaries = KubeBinaries.locate()
    except KubeEnvError:
        yield None
        return
    try:
        api = KubeAPI(binaries).start()
    except KubeEnvError as err:
        raise BenchError(f"the kube-apiserver could not be started: {err}") from err
    try:
        yield api.kubeconfig
    finally:
        api.stop()


def _environ() -> dict[str, str]:
    """No cluster or store but the ones given: the caller's KUBECONFIG and GITWARD_STATE are dropped."""
    return {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "GITWARD_STATE")}


def baseline_rss(runs: int) -> float:
    """Median VmRSS, in MiB, of `runs` fresh interpreters that imported engine.cli.run."""
    sizes = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", BASELINE_CODE], cwd=ROOT, env=_environ(),
                              capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise BenchError(f"the baseline interpreter failed: {done.stderr[-500:]}")
        sizes.append(vm_rss_kib(done.stdout) / 1024)
    return statistics.median(sizes)


@dataclass(frozen=True)
class _Run:
    """What the child reported: its samples, how often it asked for the push, the wall time."""

    samples: list[Sample]
    pushes: int
    seconds: float


def _drive(world: _World, base: Path, minutes: int, push_at: float) -> _Run:
    """Run the child for the simulated run, pushing the new tags when it asks."""
    config = {"repo": str(world.seed), "state": str(world.state), "workdir": str(base / "cache"),
              "kubeconfig": str(world.kubeconfig) if world.kubeconfig else None,
              "minutes": minutes, "push_at": push_at, "log": str(base / "run.log")}
    config_path = base / "daemon.json"
    config_path.write_text(json.dumps(config))
    errors = base / "daemon.err"
    samples: list[Sample] = []
    pushes = 0
    started = time.monotonic()
    with errors.open("w") as stderr:
        child = subprocess.Popen([sys.executable, "-m", "bench.daemon", str(config_path)],
                                 cwd=ROOT, env=_environ(), stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=stderr, text=True)
    deadline = threading.Timer(CHILD_DEADLINE, child.kill)
    deadline.start()
    try:
        assert child.stdout is not None and child.stdin is not None
        for line in child.stdout:
            if not line.startswith("{"):
                continue
            message = json.loads(line)
            if message["event"] == "push":
                _push_new_tags(world.registry_url)
                pushes += 1
                child.stdin.write("pushed\n")
                child.stdin.flush()
            elif message["event"] == "sample":
                samples.append(Sample(message["label"], message["minute"], message["vm_rss"],
                                      message["max_rss"], message["reconciles"]))
        status = child.wait()
    finally:
        deadline.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
    if status != 0:
        raise BenchError(f"the daemon exited with {status}: {errors.read_text()[-1500:]}")
    if not samples or samples[0].label != "first pass" or samples[-1].label != "end":
        raise BenchError(f"the daemon reported no first pass and end: {[s.label for s in samples]}")
    return _Run(samples, pushes, time.monotonic() - started)


@dataclass(frozen=True)
class _Reconciles:
    """The run log, counted: reconciles by kind, and the failed ones' messages."""

    by_kind: Counter[str]
    failures: list[str]

    @classmethod
    def read(cls, log: Path) -> _Reconciles:
        by_kind: Counter[str] = Counter()
        failures = []
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if "duration" in record:
                by_kind[record["kind"]] += 1
                if record["outcome"] == "failed":
                    failures.append(f"{record['kind']} {record['object']}: {record['msg']}")
        return cls(by_kind, failures)


def _check(world: _World, counted: _Reconciles, done: _Run) -> str:
    """Stop on a wrong answer (a failed reconcile, no commit after the push); what the run did."""
    if counted.failures:
        raise BenchError(f"{len(counted.failures)} reconcile(s) failed, first: {counted.failures[0]}")
    if done.pushes != 1:
        raise BenchError(f"the daemon asked for the mid-run push {done.pushes} times, not once")
    subjects = world.bare.subjects()[:-1]  # newest first; the seed's commit left out
    if world.registry_url is None:
        if subjects:
            raise BenchError(f"commits were pushed with every automation suspended: {subjects}")
        return "no commits (image repositories and automations suspended)"
    if f"{world.image('podinfo')}:{PODINFO_PUSHED}" not in world.bare.read(PODINFO_DEPLOYMENT):
        raise BenchError(f"podinfo {PODINFO_PUSHED} was pushed but never committed: {subjects}")
    if subjects.count("Update podinfo image") != 1 or subjects.count("Update ledger image") > 1:
        raise BenchError(f"each app should be committed once at most, after the push: {subjects}")
    pushed = ", ".join(reversed(subjects)) or "none"
    if world.kubeconfig is None:
        return f"commits pushed: {pushed}"
    with connect(world.kubeconfig) as client:
        live = read_object(client, "apps/v1", "Deployment", "podinfo", "podinfo")
    containers = (live or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    running = containers[0]["image"].rsplit(":", 1)[-1] if containers else "nothing"
    return f"commits pushed: {pushed}; the cluster's podinfo runs {running}"


def run(minutes: int, push_at: float, runs: int, workdir: Path) -> list[Result]:
    """Two lines: the daemon's VmRSS after its first pass and at the end of `minutes` simulated
    minutes, each against a fresh interpreter's."""
    if not HOMELAB.is_dir():
        raise BenchError(f"examples/homelab is missing ({HOMELAB})")
    if shutil.which("git") is None:
        raise BenchError("git is not installed (apt-get install git)")
    base = workdir / "daemon"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    with _registry(base) as registry_url, _kube() as kubeconfig:
        world = _wire(base, registry_url, kubeconfig)
        baseline = baseline_rss(runs)
        done = _drive(world, base, minutes, push_at)
        counted = _Reconciles.read(base / "run.log")
        did = _check(world, counted, done)
    if registry_url is not None:
        did = f"new tags pushed at {push_at:g} min; {did}"
    first, end = done.samples[0], done.samples[-1]
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(counted.by_kind.items()))
    left_out = []
    if registry_url is None:
        left_out.append("image repositories and automations (docker-registry is not installed)")
    if kubeconfig is None:
        left_out.append("Kustomizations (no kube-apiserver: `bash tests/env/kube.sh build`)")
    series = " ".join(f"{s.minute:g}m={s.mib:.1f}" for s in done.samples)
    growth = end.mib - first.mib
    return [
        Result(
            name="daemon VmRSS after first pass", size=first.reconciles, unit=MIB,
            timing=Timing(first.mib, baseline, 1),
            goal="none: measured", met=True, baseline_name=BASELINE_NAME,
            note=f"ru_maxrss {first.max_rss / 1024:.1f} MiB; size = reconciles so far",
        ),
        Result(
            name=f"daemon VmRSS after {minutes} simulated min", size=end.reconciles, unit=MIB,
            timing=Timing(end.mib, baseline, 1), goal="none: measured", met=True,
            baseline_name=BASELINE_NAME,
            note=(f"growth since first pass {growth:+.1f} MiB ({growth / first.mib:+.1%}); "
                  f"ru_maxrss {end.max_rss / 1024:.1f} MiB; VmRSS MiB by simulated minute: {series}; "
                  f"reconciles: {kinds}; {did}; "
                  f"{done.seconds:.0f} s of wall time"
                  + (f"; left out: {'; '.join(left_out)}" if left_out else "")),
        ),
    ]


def main(argv: Sequence[str]) -> int:
    """The child's entry point: `python -m bench.daemon CONFIG.json`."""
    if len(argv) != 1:
        print("usage: python -m bench.daemon CONFIG.json (started by `python -m bench.run --only "
              "daemon`)", file=sys.stderr)
        return 2
    serve(json.loads(Path(argv[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
