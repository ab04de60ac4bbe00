"""Marker rewrites on a large repository: `gitward images update` against `grep -rl '$imagepolicy'`.

The tree (generated from a fixed seed) is 20,000 Kubernetes manifests under cluster/apps/<app>/,
2,000 of them with a Flux marker on an image line, and one rules file: a git source, 20 image
repositories and policies in namespace `apps`, and one `image update apps/apps` over
"./cluster". Each repository's tags are recorded in a fresh SQLite store, in two scans with the
tag every policy selects an hour after the others, so it is newer than the files' tags by the
ledger's first sighting too (the rollback gate lets it through) and the update rewrites all 2,000
marked values.

- `images update`: the real command, `gitward --state DB images update --repo TREE --offline
  --no-commit`, as a subprocess. Goal (issue 15, once 3x): within 10x of `grep -rl '$imagepolicy'
  TREE` timed in the same run, which says how little a tree of unmarked files may cost.
- in-process: what the command does after start-up (load the rules, open the store, plan,
  write) timed inside this process, against the same grep, to tell start-up from the work.

Before each timed run of a subject the tree and the store are restored from pristine copies,
and after it the answer is checked; both untimed. Every marked file must then hold exactly its
expected text and every other file its original bytes; grep must list the marked files.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from bench import BenchError, Result, Setup, interleaved
from bench.policy import FILTER_PATTERN, SEMVER_RANGE, make_tags
from engine.errors import GitwardError, Problems
from engine.model import ImageRepository, RuleSet
from engine.reconcile.images import record_tags
from engine.reconcile.repo import read_marked_tree
from engine.reconcile.commits import write_changes
from engine.reconcile.updates import plan_checkout
from engine.rules.load import load_repo
from engine.store.db import open_store

FULL_FILES = 20_000
FULL_MARKED = 2_000
QUICK_FILES = 400
QUICK_MARKED = 40
MAX_RATIO = 10.0
SEED = 20240612
TAGS_PER_REPOSITORY = 200
NAMESPACE = "apps"
SCREEN = "$imagepolicy"
RULES_FILE = "cluster/image-automation.rules"
REGISTRY = "registry.example.com/shop"
BASELINE_NAME = "grep -rl '$imagepolicy' over the same tree (subprocess)"

POLICIES = (
    "frontend", "checkout", "payments", "catalog", "search", "orders", "inventory", "shipping",
    "accounts", "notifications", "reports", "auth", "gateway", "ledger", "recommender", "media",
    "chat", "analytics", "scheduler", "billing",
)
"""One image repository and one policy of each name; every third selects by build timestamp."""

_RECORDED_AT = datetime(2025, 1, 1, tzinfo=UTC)
_RELEASE = re.compile(r"v?([0-9]+)\.[0-9]+\.[0-9]+")
_ADJECTIVES = (
    "amber", "brisk", "calm", "dusty", "eager", "fuzzy", "gentle", "hollow", "icy", "jolly",
    "keen", "lunar", "misty", "noble", "olive", "proud", "quiet", "rapid", "silver", "tidy",
)
_NOUNS = (
    "badger", "comet", "delta", "ember", "falcon", "glacier", "harbor", "island", "jackal",
    "kestrel", "lagoon", "meadow", "nebula", "orchid", "pepper", "quartz", "raven", "summit",
    "tundra", "willow",
)
_THIRD_PARTY = (
    "docker.io/library/nginx:1.25.3", "docker.io/library/redis:7.2.4-alpine",
    "quay.io/prometheus/statsd-exporter:v0.26.0", "ghcr.io/oauth2-proxy/oauth2-proxy:v7.5.1",
    "docker.io/envoyproxy/envoy:v1.29.1", "docker.io/bitnami/postgresql:16.2.0",
)


@dataclass(frozen=True)
class Tree:
    """A generated repository: where it is, and what the update must write.

    `expected` maps each marked file (repo-relative) to its full text after the update; `tags`
    maps each image repository's name to the tags the store records for it, `winners` to the
    tag its policy selects.
    """

    root: Path
    expected: dict[str, str]
    tags: dict[str, tuple[str, ...]]
    winners: dict[str, str]


@dataclass(frozen=True)
class _Policy:
    name: str
    timestamp: bool
    tags: tuple[str, ...]
    winner: str
    older: tuple[str, ...]

    @property
    def image(self) -> str:
        return f"{REGISTRY}/{self.name}"


def _policies(seed: int) -> list[_Policy]:
    """Each policy's tags (as `make_tags` draws them), the tag it must select, and older ones."""
    found = []
    for index, name in enumerate(POLICIES):
        tag_set = make_tags(TAGS_PER_REPOSITORY, seed=seed + index)
        timestamp = index % 3 == 2
        if timestamp:
            winner = tag_set.timestamp_winner
            older = tuple(t for t in tag_set.tags if re.fullmatch(FILTER_PATTERN, t) and t[:13] != winner[:13])
        else:
            winner = tag_set.semver_winner
            older = tuple(t for t in tag_set.tags
                          if (m := _RELEASE.fullmatch(t)) and 1 <= int(m[1]) < 50 and t != winner)
        if not older:
            raise BenchError(f"the tags of {name} hold nothing older than {winner}; use more tags")
        found.append(_Policy(name, timestamp, tag_set.tags, winner, older))
    return found


def rules_text(policies: Sequence[_Policy]) -> str:
    """The rules file: a git source, one automation, and a repository and a policy per name."""
    parts = [
        'source git flux-system {\n  url "ssh://git@git.example.com/shop/fleet"\n  branch "main"\n}\n',
        (f"image update {NAMESPACE}/{NAMESPACE} {{\n  source git flux-system/flux-system\n"
         '  path "./cluster"\n  author "fluxcdbot <fluxcdbot@users.noreply.github.com>"\n'
         '  push "main"\n}\n'),
    ]
    for p in policies:
        parts.append(f'image repository {NAMESPACE}/{p.name} {{\n  image "{p.image}"\n  interval 5m\n}}\n')
        select = (f'  filter "{FILTER_PATTERN}" extract "$ts$hm"\n  select highest numerical\n'
                  if p.timestamp else f'  select highest semver "{SEMVER_RANGE}"\n')
        parts.append(f"image policy {NAMESPACE}/{p.name} {{\n  repository {p.name}\n{select}}}\n")
    return "\n".join(parts)


def write_tree(root: Path, manifests: int, marked: int, seed: int = SEED) -> Tree:
    """Write the repository below `root` (which must not exist yet); the same tree for a seed."""
    if not 0 < marked <= manifests // 4:
        raise BenchError(f"{marked} marked files among {manifests}: mark between 1 and a quarter of them")
    rng = random.Random(seed)
    policies = _policies(seed)
    layout = _layout(rng, manifests)
    deployments = [i for i, (_, kinds) in enumerate(layout) if "Deployment" in kinds]
    if len(deployments) < marked:
        raise BenchError(f"only {len(deployments)} manifests hold a Deployment; cannot mark {marked}")
    chosen = {i: rng.choice(policies) for i in rng.sample(deployments, marked)}
    expected: dict[str, str] = {}
    (root / "cluster").mkdir(parents=True)
    (root / RULES_FILE).write_text(rules_text(policies), encoding="utf-8")
    for index, (rel, kinds) in enumerate(layout):
        policy = chosen.get(index)
        old = rng.choice(policy.older) if policy else ""
        state = rng.getstate()
        text = _manifest(rng, rel, kinds, policy, old)
        if policy is not None:
            rng.setstate(state)
            expected[rel] = _manifest(rng, rel, kinds, policy, policy.winner)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Tree(root, expected, {p.name: p.tags for p in policies},
                {p.name: p.winner for p in policies})


def _layout(rng: random.Random, manifests: int) -> list[tuple[str, tuple[str, ...]]]:
    """(repo-relative path, kinds of its documents) of every manifest, app by app."""
    layout: list[tuple[str, tuple[str, ...]]] = []
    app_index = 0
    while len(layout) < manifests:
        app = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{app_index}"
        app_index += 1
        files: list[tuple[str, tuple[str, ...]]] = [
            ("deployment.yaml", ("Deployment",)),
            ("service.yaml", ("Service",)),
            ("configmap.yaml", ("ConfigMap",)),
        ]
        for n in range(rng.randrange(0, 3)):
            files.append((f"worker-{n}.yaml", ("Deployment", "Service") if rng.random() < 0.5 else ("Deployment",)))
        for n in range(rng.randrange(0, 4)):
            files.append((f"config-{n}.yaml", ("ConfigMap",) * rng.randrange(1, 4)))
        if rng.random() < 0.3:
            files.append(("cron-service.yaml", ("Service", "Service")))
        files.append(("kustomization.yaml", ("Kustomization",)))
        for name, kinds in files[: manifests - len(layout)]:
            layout.append((f"cluster/apps/{app}/{name}", kinds))
    return layout


def _manifest(rng: random.Random, rel: str, kinds: tuple[str, ...], policy: _Policy | None, tag: str) -> str:
    app = rel.split("/")[2]
    stem = rel.rsplit("/", 1)[1].removesuffix(".yaml")
    name = app if stem in {"deployment", "service", "configmap", "kustomization"} else f"{app}-{stem}"
    if kinds == ("Kustomization",):
        return _kustomization(rng, app)
    docs = []
    for n, kind in enumerate(kinds):
        doc_name = name if n == 0 else f"{name}-{n}"
        if kind == "Deployment":
            docs.append(_deployment(rng, doc_name, app, policy if n == 0 else None, tag))
        elif kind == "Service":
            docs.append(_service(rng, doc_name, app))
        else:
            docs.append(_configmap(rng, doc_name, app))
    return "---\n".join(docs)


def _metadata(name: str, app: str) -> str:
    return (
        f"metadata:\n  name: {name}\n  namespace: {NAMESPACE}\n  labels:\n"
        f"    app.kubernetes.io/name: {name}\n    app.kubernetes.io/part-of: {app}\n"
        "    app.kubernetes.io/managed-by: flux\n"
    )


def _deployment(rng: random.Random, name: str, app: str, policy: _Policy | None, tag: str) -> str:
    if policy is not None:
        image = f'{policy.image}:{tag} # {{"{SCREEN}": "{NAMESPACE}:{policy.name}"}}'
    else:
        image = rng.choice(_THIRD_PARTY)
    env = "".join(
        f"            - name: {key}\n              value: \"{rng.randrange(1, 10_000)}\"\n"
        for key in rng.sample(("LOG_LEVEL", "WORKERS", "CACHE_TTL", "POOL_SIZE", "TIMEOUT_MS",
                               "RETRY_LIMIT", "BATCH_SIZE", "QUEUE_DEPTH", "MAX_CONNS"), rng.randrange(2, 8))
    )
    sidecar = (
        "        - name: metrics\n"
        f"          image: {rng.choice(_THIRD_PARTY)}\n"
        "          ports:\n            - name: metrics\n              containerPort: 9102\n"
        "          resources:\n            requests:\n              cpu: 10m\n              memory: 32Mi\n"
        if rng.random() < 0.3 else ""
    )
    return (
        f"apiVersion: apps/v1\nkind: Deployment\n{_metadata(name, app)}"
        f"  annotations:\n    shop.example.com/owner: team-{rng.choice(_NOUNS)}\n"
        f"spec:\n  replicas: {rng.randrange(1, 6)}\n  revisionHistoryLimit: 5\n"
        f"  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n"
        "  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 25%\n      maxUnavailable: 0\n"
        f"  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: {name}\n"
        f"        app.kubernetes.io/part-of: {app}\n      annotations:\n"
        f"        prometheus.io/scrape: \"true\"\n        prometheus.io/port: \"9102\"\n"
        f"    spec:\n      serviceAccountName: {name}\n      securityContext:\n"
        "        runAsNonRoot: true\n        runAsUser: 10001\n        fsGroup: 10001\n"
        f"      containers:\n        - name: {'server' if policy is None else policy.name}\n"
        f"          image: {image}\n          imagePullPolicy: IfNotPresent\n"
        f"          args:\n            - --listen=:8080\n            - --config=/etc/{app}/config.yaml\n"
        "          ports:\n            - name: http\n              containerPort: 8080\n              protocol: TCP\n"
        f"          env:\n{env}"
        f"          resources:\n            requests:\n              cpu: {rng.choice((50, 100, 250, 500))}m\n"
        f"              memory: {rng.choice((64, 128, 256, 512))}Mi\n            limits:\n"
        f"              memory: {rng.choice((256, 512, 1024))}Mi\n"
        "          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: http\n"
        "            initialDelaySeconds: 10\n            periodSeconds: 20\n"
        "          readinessProbe:\n            httpGet:\n              path: /ready\n              port: http\n"
        "            periodSeconds: 5\n"
        f"          volumeMounts:\n            - name: config\n              mountPath: /etc/{app}\n"
        f"              readOnly: true\n{sidecar}"
        f"      volumes:\n        - name: config\n          configMap:\n            name: {app}\n"
    )


def _service(rng: random.Random, name: str, app: str) -> str:
    port = rng.choice((80, 443, 8080, 9090))
    return (
        f"apiVersion: v1\nkind: Service\n{_metadata(name, app)}"
        f"spec:\n  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: {app}\n"
        f"  ports:\n    - name: http\n      port: {port}\n      targetPort: http\n      protocol: TCP\n"
    )


def _configmap(rng: random.Random, name: str, app: str) -> str:
    settings = "".join(
        f"    {section}:\n" + "".join(f"      {key}_{n}: {rng.randrange(10**6)}\n" for n in range(rng.randrange(2, 12)))
        for section, key in rng.sample(
            [("server", "limit"), ("cache", "ttl"), ("database", "pool"), ("queue", "depth"),
             ("tracing", "sample"), ("features", "flag"), ("retry", "backoff")], rng.randrange(1, 6))
    )
    return (
        f"apiVersion: v1\nkind: ConfigMap\n{_metadata(name, app)}"
        f"data:\n  LOG_FORMAT: json\n  REGION: eu-west-{rng.randrange(1, 4)}\n  config.yaml: |\n{settings}"
    )


def _kustomization(rng: random.Random, app: str) -> str:
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {NAMESPACE}\nresources:\n  - deployment.yaml\n  - service.yaml\n  - configmap.yaml\n"
        f"commonLabels:\n  shop.example.com/tier: {rng.choice(('web', 'api', 'batch'))}\n"
    )


def seed_store(tree: Tree, database: Path) -> None:
    """Record every repository's tags in a fresh SQLite store, left as one self-contained file."""
    problems = Problems()
    rules = load_repo(tree.root, problems).rules
    if problems.errors:
        raise BenchError(f"the generated rules do not load: {problems.errors[0].message}")
    with open_store(_url(database)) as store:
        for repository in _repositories(rules):
            tags = tree.tags[repository.name]
            newest = tree.winners[repository.name]
            record_tags(store, repository, [t for t in tags if t != newest],
                        started_at=_RECORDED_AT, finished_at=_RECORDED_AT)
            record_tags(store, repository, tags, started_at=_RECORDED_AT + timedelta(hours=1),
                        finished_at=_RECORDED_AT + timedelta(hours=1))
    connection = sqlite3.connect(database)
    try:
        connection.execute("PRAGMA journal_mode = DELETE")
    finally:
        connection.close()


def _repositories(rules: RuleSet) -> list[ImageRepository]:
    found = [r for r in rules.image_repositories if r.namespace == NAMESPACE]
    if len(found) != len(POLICIES):
        raise BenchError(f"the generated rules hold {len(found)} image repositories, not {len(POLICIES)}")
    return found


# Running ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    """The pristine tree and store, and the working copies each subject run starts from."""

    tree: Tree
    database: Path
    work: Path
    work_database: Path
    gitward: tuple[str, ...]

    def reset(self) -> None:
        """Restore the working tree and store from the pristine copies."""
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.copytree(self.tree.root, self.work)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{self.work_database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.database, self.work_database)

    def command(self, *args: str) -> list[str]:
        return [*self.gitward, *args]

    def update(self) -> subprocess.CompletedProcess[str]:
        """`gitward images update` on the working copies, as a user runs it."""
        return subprocess.run(
            self.command("--state", str(self.work_database), "images", "update", "--repo", str(self.work),
                         "--offline", "--no-commit"),
            capture_output=True, text=True, check=False, env=_environment(),
        )

    def update_in_process(self) -> list[str]:
        """What the command does after start-up, in this process; the paths written."""
        problems = Problems()
        try:
            rules = load_repo(self.work, problems).rules
            problems.raise_if_errors()
            with open_store(_url(self.work_database)) as store:
                planned = plan_checkout(read_marked_tree(self.work, rules), rules, store, datetime.now(UTC),
                                        record=True)
        except GitwardError as err:
            raise BenchError(f"the in-process update failed: {err}") from err
        written: list[str] = []
        for action in planned.plan.actions:
            written += write_changes(self.work, planned.texts[action.target])
        return written

    def grep(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["grep", "-rl", SCREEN, str(self.work)], capture_output=True, text=True, check=False)

    def check_update(self, done: subprocess.CompletedProcess[str]) -> None:
        if done.returncode != 0:
            raise BenchError(f"images update exited {done.returncode}: {done.stderr.strip()[:500]}")
        rewrites = sum(1 for line in done.stdout.splitlines() if line.startswith("✔ "))
        if rewrites != len(self.tree.expected):
            raise BenchError(f"images update reported {rewrites} rewrites; expected {len(self.tree.expected)}")
        self.check_tree()

    def check_in_process(self, written: list[str]) -> None:
        if sorted(written) != sorted(self.tree.expected):
            raise BenchError(f"the in-process update wrote {len(written)} files; "
                             f"expected the {len(self.tree.expected)} marked ones")
        self.check_tree()

    def check_grep(self, done: subprocess.CompletedProcess[str]) -> None:
        listed = {Path(line).relative_to(self.work).as_posix() for line in done.stdout.splitlines()}
        if done.returncode != 0 or listed != set(self.tree.expected):
            raise BenchError(f"grep exited {done.returncode} and listed {len(listed)} files; "
                             f"expected the {len(self.tree.expected)} marked ones")

    def check_tree(self) -> None:
        """Every marked file holds its expected text; every other file is byte for byte the same."""
        pristine = self.tree.root
        seen = 0
        for path in pristine.rglob("*"):
            if not path.is_file():
                continue
            rel = path.relative_to(pristine).as_posix()
            expected = self.tree.expected.get(rel)
            want = expected.encode() if expected is not None else path.read_bytes()
            if (self.work / rel).read_bytes() != want:
                raise BenchError(f"after the update {rel} does not hold the expected text")
            seen += 1
        extra = sum(1 for p in self.work.rglob("*") if p.is_file()) - seen
        if extra:
            raise BenchError(f"the update left files that were not in the tree ({extra})")


T = TypeVar("T")


class _Checked:
    """Setups for `interleaved` that check each run's answer in the next (untimed) setup.

    A subject run starts from a restored tree and store. grep reads the tree as the previous
    run left it: a rewrite changes values, never which files hold a marker.
    """

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self._pending: Callable[[], None] | None = None

    def subject(self, work: Callable[[], T], check: Callable[[T], None]) -> Setup:
        def setup() -> Callable[[], None]:
            self.settle()
            self.bench.reset()
            return self._recorded(work, check)
        return setup

    def baseline(self, work: Callable[[], T], check: Callable[[T], None]) -> Setup:
        def setup() -> Callable[[], None]:
            self.settle()
            if not self.bench.work.is_dir():
                self.bench.reset()
            return self._recorded(work, check)
        return setup

    def settle(self) -> None:
        """Check the last run's answer, if it has not been checked yet."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending()

    def _recorded(self, work: Callable[[], T], check: Callable[[T], None]) -> Callable[[], None]:
        def timed() -> None:
            result = work()
            self._pending = lambda: check(result)
        return timed


def _environment() -> dict[str, str]:
    """This process's environment without a state store or debug switch of its own."""
    return {k: v for k, v in os.environ.items() if k not in {"GITWARD_STATE", "GITWARD_DEBUG"}}


def _gitward() -> tuple[str, ...]:
    """The installed `gitward` command beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "gitward"
    if not script.is_file():
        raise BenchError(f"no gitward command beside {sys.executable}: run `pip install -e .`")
    return (str(script),)


def _url(database: Path) -> str:
    return f"sqlite:///{database}"


@contextmanager
def prepared(manifests: int, marked: int, workdir: Path) -> Iterator[Bench]:
    """The generated tree and its working copy (on /dev/shm when there is one, as the scan's
    registry), and the seeded store and its working copy in `workdir`, on disk like a real one."""
    if shutil.which("grep") is None:
        raise BenchError("grep is not installed")
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="gitward-bench-markers-", dir=shm if shm.is_dir() else None) as scratch:
        tree = write_tree(Path(scratch) / "pristine", manifests, marked)
        database = workdir / "markers-pristine.db"
        seed_store(tree, database)
        yield Bench(tree, database, Path(scratch) / "work", workdir / "markers.db", _gitward())


def run(manifests: int, marked: int, runs: int, workdir: Path) -> list[Result]:
    """The command and its in-process work on the generated tree, each against grep."""
    with prepared(manifests, marked, workdir) as bench:
        checked = _Checked(bench)
        grep = checked.baseline(bench.grep, bench.check_grep)
        command = interleaved(checked.subject(bench.update, bench.check_update), grep, runs)
        in_process = interleaved(checked.subject(bench.update_in_process, bench.check_in_process), grep, runs)
        checked.settle()
        start_up = _start_up(bench, runs)
    goal = f"<={MAX_RATIO:g}x"
    return [
        Result(
            name=f"markers images update, {marked:,} marked",
            size=manifests, unit="files", timing=command, goal=goal, met=command.ratio <= MAX_RATIO,
            baseline_name=BASELINE_NAME,
            note=f"`gitward --version` alone (interpreter start-up and imports) takes {start_up:.3f} s",
        ),
        Result(
            name=f"markers plan+rewrite in-process, {marked:,} marked",
            size=manifests, unit="files", timing=in_process, goal=goal, met=in_process.ratio <= MAX_RATIO,
            baseline_name=BASELINE_NAME,
            note="load_repo, open_store, plan_checkout(record=True), write_changes: the command "
            "without start-up",
        ),
    ]


def _start_up(bench: Bench, runs: int) -> float:
    """Median seconds of `gitward --version`, after one uncounted run."""
    times = []
    for index in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(bench.command("--version"), capture_output=True, text=True, check=False,
                              env=_environment())
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchError(f"gitward --version exited {done.returncode}: {done.stderr.strip()[:300]}")
        if index:
            times.append(elapsed)
    return statistics.median(times)


def profile(manifests: int, marked: int, limit: int = 25) -> str:
    """cProfile of the in-process work on a fresh tree: most cumulative time, then most own time."""
    with tempfile.TemporaryDirectory(prefix="gitward-bench-") as workdir, \
            prepared(manifests, marked, Path(workdir)) as bench:
        bench.reset()
        profiler = cProfile.Profile()
        written = profiler.runcall(bench.update_in_process)
        bench.check_in_process(written)
    out = io.StringIO()
    out.write(f"--- images update in-process on {manifests:,} files, {marked:,} marked\n")
    stats = pstats.Stats(profiler, stream=out)
    parsed = sum(calls for (_, _, name), (_, calls, *_) in stats.stats.items() if name == "read_layout")  # type: ignore[attr-defined]
    out.write(f"YAML layouts parsed (read_layout calls): {parsed:,} for {marked:,} marked files\n")
    stats.sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)
    return out.getvalue()
