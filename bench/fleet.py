"""A fleet pass: one steady `gitward run --once` over N image repositories of 1,000 tags each.

The world: a real docker-registry serving N repositories (`fleet/app-<i>`) of the same tags, a
bare git repository holding one rules file (a git source, one automation over `./apps`, an image
repository and a semver policy per app) and N marked files, each already deploying the tag its
policy selects. A first `gitward run --once` (untimed) records the first scans and decisions; the
subject is the next one, in steady state: every repository scanned again and its policy decided,
the automation planned, nothing to commit.

- pass: `gitward run --once` as a subprocess (start-up included: it is what a user runs), against
  the floor, in this process: a bare httpx loop listing every repository (same page size, follow
  `Link`) and one RE2 match of the policy's semver shape per tag. Goal: <= 3x.
- memory: the pass's peak RSS (its own `ru_maxrss`, from `wait4`) against a bare interpreter that
  imported every module the pass had loaded by its end (the subject reports them). Goal: <= 2x.

Seeding is cheap and honest: the tags are written once into the registry's storage, every tag a
link to one tiny manifest (tests/integration/registry_env.py `write_tags`), and every other
repository is a symlink to that one: the registry still reads each repository's tag directory
on each listing.
"""

from __future__ import annotations

import json
import statistics
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import re2

from bench import BenchError, Result, Timing, interleaved
from bench.daemon import MIB
from bench.policy import SEMVER_RANGE, make_tags
from bench.scan import _bare_listing, _registry_storage

FULL_SIZE = 500
QUICK_SIZE = 4
FULL_TAGS = 1_000
QUICK_TAGS = 200
MAX_RATIO = 3.0
MAX_RSS_RATIO = 2.0
NAMESPACE = "fleet"
AUTOMATION = f"{NAMESPACE}/{NAMESPACE}"
SEMVER_SHAPE = r"^v?[0-9]+\.[0-9]+\.[0-9]+"
"""What the floor matches each tag against: one RE2 match, the least a semver policy does."""

ROOT = Path(__file__).resolve().parents[1]
_MODULES_CODE = (
    "import importlib, json, resource, sys\n"
    "names = json.loads(sys.argv[1])\n"
    "failed = []\n"
    "for name in names:\n"
    "    try:\n"
    "        importlib.import_module(name)\n"
    "    except Exception:\n"
    "        failed.append(name)\n"
    "print(json.dumps({'max_rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'failed': failed}))\n"
)
_PASS_CODE = (
    "import json, resource, sys\n"
    "from engine.cli import main\n"
    "status = main(sys.argv[1:])\n"
    "print(json.dumps({'status': status, 'max_rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
    "                  'modules': sorted(m for m in sys.modules if not m.startswith(('__main__', 'bench')))}))\n"
)


def app(index: int) -> str:
    return f"app-{index:04d}"


def rules_text(size: int, host: str, bare: Path) -> str:
    """The rules file: a git source, one automation, and a repository and policy per app."""
    parts = [
        f'source git {NAMESPACE}/{NAMESPACE} {{\n  url "{bare.as_uri()}"\n  branch "main"\n  interval 1h\n}}\n',
        (f"image update {AUTOMATION} {{\n  source git {NAMESPACE}/{NAMESPACE}\n  path \"./apps\"\n"
         '  author "fluxcdbot <fluxcdbot@users.noreply.github.com>"\n  push "main"\n  interval 1h\n}\n'),
    ]
    for i in range(size):
        parts.append(f'image repository {NAMESPACE}/{app(i)} {{\n  image "{host}/{NAMESPACE}/{app(i)}"\n'
                     "  insecure true\n  interval 1h\n}\n")
        parts.append(f'image policy {NAMESPACE}/{app(i)} {{\n  repository {app(i)}\n'
                     f'  select highest semver "{SEMVER_RANGE}"\n}}\n')
    return "\n".join(parts)


def deployment(index: int, host: str, tag: str) -> str:
    name = app(index)
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n"
            f"spec:\n  template:\n    spec:\n      containers:\n        - name: {name}\n"
            f'          image: {host}/{NAMESPACE}/{name}:{tag} # {{"$imagepolicy": "{NAMESPACE}:{name}"}}\n')


def write_tree(root: Path, size: int, host: str, bare: Path, tag: str) -> None:
    """The checkout the bare repository is made from: the rules and one marked file per app."""
    (root / "apps").mkdir(parents=True)
    (root / "fleet.rules").write_text(rules_text(size, host, bare), encoding="utf-8")
    for i in range(size):
        folder = root / "apps" / app(i)
        folder.mkdir()
        (folder / "deployment.yaml").write_text(deployment(i, host, tag), encoding="utf-8")


def seed_registry(storage: Path, size: int, tags: Sequence[str]) -> None:
    """Every repository holds `tags`: one written, the others symlinks to it."""
    from tests.integration.registry_env import write_tags

    write_tags(storage, f"{NAMESPACE}/{app(0)}", tags)
    repositories = storage / "docker" / "registry" / "v2" / "repositories" / NAMESPACE
    for i in range(1, size):
        (repositories / app(i)).symlink_to(app(0), target_is_directory=True)


@dataclass(frozen=True)
class World:
    """Everything one fleet pass needs, made once per benchmark."""

    base: Path
    seed: Path
    state: Path
    registry_url: str
    size: int
    tags: tuple[str, ...]
    winner: str

    def argv(self) -> list[str]:
        return ["--state", str(self.state), "run", "--once", "--repo", str(self.seed),
                "--workdir", str(self.base / "cache"), "--log-format", "json"]


@dataclass(frozen=True)
class PassRun:
    """One `gitward run --once` as the child reported it."""

    max_rss_kib: int
    cpu_seconds: float
    """User and system CPU of the child: its own cost, whatever else runs on the machine."""
    modules: tuple[str, ...]
    log: str


def run_pass(world: World, number: int) -> PassRun:
    """Run `gitward run --once` in a child interpreter; its own peak RSS through wait4."""
    log = world.base / f"pass-{number}.log"
    out = world.base / f"pass-{number}.out"
    with log.open("w") as err, out.open("w") as stdout:
        child = subprocess.Popen([sys.executable, "-c", _PASS_CODE, *world.argv()], cwd=ROOT,
                                 env=_environ(), stdout=stdout, stderr=err)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if child.returncode != 0:
        raise BenchError(f"gitward run --once exited with {child.returncode}: {text[-1500:]}")
    report = json.loads(out.read_text().splitlines()[-1])
    if report["status"] != 0:
        raise BenchError(f"gitward run --once returned {report['status']}: {text[-1500:]}")
    return PassRun(usage.ru_maxrss, usage.ru_utime + usage.ru_stime, tuple(report["modules"]), text)


def check_pass(world: World, done: PassRun) -> None:
    """Every repository scanned, every policy on the winner, the automation with nothing to do."""
    records = [json.loads(line) for line in done.log.splitlines() if line.startswith("{")]
    reconciled = [r for r in records if "duration" in r]
    failed = [f"{r['kind']} {r['object']}: {r['msg']}" for r in reconciled if r["outcome"] != "ok"]
    if failed:
        raise BenchError(f"{len(failed)} reconcile(s) failed, first: {failed[0]}")
    repositories = [r for r in reconciled if r["kind"] == "ImageRepository"]
    if len(repositories) != world.size:
        raise BenchError(f"{len(repositories)} image repositories reconciled, not {world.size}")
    wrong = [r for r in repositories
             if r["revision"] != f"{NAMESPACE}/{r['object'].split('/')[1]}={world.winner}"
             or f": {len(world.tags)} tags" not in r["msg"]]
    if wrong:
        raise BenchError(f"{len(wrong)} repositories did not select {world.winner} of "
                         f"{len(world.tags)} tags, first: {wrong[0]}")
    automation = [r for r in reconciled if r["kind"] == "ImageUpdateAutomation"]
    if [r["msg"] for r in automation] != ["no updates"]:
        raise BenchError(f"the automation should find nothing to update: {automation}")


def floor(client: httpx.Client, world: World, pattern: re2._Regexp) -> int:
    """List every repository (GET each page, decode, follow Link); one RE2 match per tag."""
    matched = 0
    for i in range(world.size):
        for tag in _bare_listing(client, f"{world.registry_url}/v2/{NAMESPACE}/{app(i)}/tags/list?n=1000"):
            if pattern.match(tag):
                matched += 1
    return matched


def baseline_rss(modules: Sequence[str]) -> tuple[int, list[str]]:
    """Peak RSS (KiB) of a fresh interpreter that imported `modules`, and those that failed."""
    child = subprocess.Popen([sys.executable, "-c", _MODULES_CODE, json.dumps(list(modules))],
                             cwd=ROOT, env=_environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    out, err = child.communicate(timeout=300)
    if child.returncode != 0:
        raise BenchError(f"the baseline interpreter failed: {err[-1000:]}")
    report = json.loads(out.splitlines()[-1])
    return int(report["max_rss"]), list(report["failed"])


def _environ() -> dict[str, str]:
    """No cluster or store but the ones given."""
    return {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "GITWARD_STATE")}


@contextmanager
def world(size: int, tag_count: int, workdir: Path) -> Iterator[World]:
    """The registry, the bare repository and the store after a first pass."""
    from tests.integration.git_env import GitEnvError, make_bare_repo
    from tests.integration.registry_env import RegistryEnvError, start_registry

    binary = shutil.which("docker-registry")
    if binary is None:
        raise BenchError("docker-registry is not installed (apt-get install docker-registry)")
    if shutil.which("git") is None:
        raise BenchError("git is not installed (apt-get install git)")
    made = make_tags(tag_count)
    base = workdir / "fleet"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    with _registry_storage(base) as storage:
        seed_registry(storage, size, made.tags)
        try:
            registry = start_registry(binary, base, storage, name="fleet-registry")
        except RegistryEnvError as err:
            raise BenchError(f"the docker-registry could not be started: {err}") from err
        try:
            host = registry.url.split("://", 1)[1]
            seed, bare = base / "seed", base / "fleet.git"
            write_tree(seed, size, host, bare, made.semver_winner)
            try:
                make_bare_repo(bare, seed)
            except GitEnvError as err:
                raise BenchError(f"the bare repository could not be made: {err}") from err
            yield World(base, seed, base / "state.db", registry.url, size, made.tags,
                        made.semver_winner)
        finally:
            registry.stop()


def run(size: int, tag_count: int, runs: int, workdir: Path) -> list[Result]:
    """The pass against the floor, and its peak RSS against a bare interpreter's."""
    with world(size, tag_count, workdir) as fleet:
        first = run_pass(fleet, 0)  # the first scans and decisions: not steady state
        check_pass(fleet, first)
        done: list[PassRun] = []
        pattern = re2.compile(SEMVER_SHAPE)
        expected = sum(1 for t in fleet.tags if pattern.match(t)) * size

        def subject() -> Callable[[], object]:
            return lambda: done.append(run_pass(fleet, len(done) + 1))

        with httpx.Client(timeout=30, trust_env=False) as client:
            if floor(client, fleet, pattern) != expected:
                raise BenchError("the floor did not list and match the seeded tags")

            def bare() -> Callable[[], object]:
                return lambda: floor(client, fleet, pattern)

            timing = interleaved(subject, bare, runs)
        for passed in done:
            check_pass(fleet, passed)
        peak = max(p.max_rss_kib for p in done)
        baseline, failed = baseline_rss(done[-1].modules)
    ratio = peak / baseline
    memory = Timing(peak / 1024, baseline / 1024, len(done))
    skipped = f"; {len(failed)} module(s) did not import alone: {', '.join(failed[:5])}" if failed else ""
    return [
        Result(
            name="fleet run --once, steady",
            size=size * len(fleet.tags),
            unit="tags",
            timing=timing,
            goal=f"<={MAX_RATIO:g}x",
            met=timing.ratio <= MAX_RATIO,
            baseline_name=f"bare httpx loop listing all {size} repositories (pages of 1000, follow Link) "
                          f"+ one RE2 match per tag, in-process",
            note=f"{size} image repositories x {len(fleet.tags)} tags, {size} policies, {size} marked "
                 f"files; the subject is a `gitward run --once` subprocess, start-up included; CPU "
                 f"(user+sys) per pass {statistics.median(p.cpu_seconds for p in done[1:]):.2f} s vs "
                 f"{timing.baseline_cpu:.2f} s for the floor's thread",

        ),
        Result(
            name="fleet run --once peak RSS",
            size=size * len(fleet.tags),
            unit=MIB,
            timing=memory,
            goal=f"<={MAX_RSS_RATIO:g}x",
            met=ratio <= MAX_RSS_RATIO,
            baseline_name=f"ru_maxrss of a fresh interpreter that imported the {len(done[-1].modules)} "
                          f"modules the pass had loaded{skipped}",
            note=f"the highest of the {len(done)} passes (warm-up included; wait4 ru_maxrss)",
        ),
    ]
