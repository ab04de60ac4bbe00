"""Sync on a 1,000-object tree: render against `kubectl kustomize`, apply against `kubectl apply`.

The tree (generated from a fixed seed) is 20 Namespaces and 1,000 objects in them: per app a
ConfigMap, a Deployment and a headless Service, in plain directories under `deploy/`. Three
lines, each against kubectl in the same run, on the same objects:

- render: `build_kustomization` of `./deploy` (plain directories, rendered in Python) against
  `kubectl kustomize` of the repository root, whose generated kustomization.yaml lists every
  file of `deploy/`. Goal (from the issue): at least 5x faster.
- first apply: `sync_kustomization` of the rendered objects into namespaces that do not exist
  yet, with a fresh SQLite store, against `kubectl apply --server-side` of the same objects into
  namespaces of their own. No goal: the time is reported.
- no-op reconcile: the same sync again, against `kubectl apply --server-side --dry-run=server`
  of the same objects. Goal: faster than kubectl, with zero writes, counted at the HTTP layer
  (every POST, PUT, PATCH or DELETE without `dryRun=All`) and in the store (its rows before and
  after).

A real kube-apiserver v1.20 and etcd run for the benchmark (tests/integration/kube_env.py);
without their binaries the two sync lines are left out, and the render line says why.
"""

from __future__ import annotations

import copy
import cProfile
import hashlib
import io
import pstats
import random
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import urllib3
import yaml

from bench import BenchError, Result, Setup, Timing, interleaved
from engine.errors import GitwardError
from engine.evaluate.apply import Change, prepare
from engine.evaluate.render import OWNER_GROUP
from engine.kubeapi import FIELD_MANAGER
from engine.model import Kustomization, Manifest, SourceRef
from engine.observe.cluster import ClusterClient, connect
from engine.reconcile.build import build_kustomization
from engine.reconcile.cluster import SyncResult, sync_kustomization
from engine.store.db import Store, open_store, state_url
from tests.integration.kube_env import KubeAPI, KubeBinaries, KubeEnvError

FULL_NAMESPACES = 20
FULL_OBJECTS = 1_000
QUICK_NAMESPACES = 3
QUICK_OBJECTS = 30
RENDER_MIN_SPEEDUP = 5.0
SEED = 20240701
KUBECTL = "/usr/bin/kubectl"
TREE = "deploy"
REVISION = f"main@sha1:{hashlib.sha1(str(SEED).encode()).hexdigest()}"
KUSTOMIZATION = Kustomization(name="bench", source_ref=SourceRef("bench"), path=f"./{TREE}",
                              prune=True, timeout=timedelta(minutes=5))
_WRITE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))

_ADJECTIVES = (
    "amber", "brisk", "calm", "dusty", "eager", "fuzzy", "gentle", "hollow", "icy", "jolly",
    "keen", "lunar", "misty", "noble", "olive", "proud", "quiet", "rapid", "silver", "tidy",
)
_NOUNS = (
    "badger", "comet", "delta", "ember", "falcon", "glacier", "harbor", "island", "jackal",
    "kestrel", "lagoon", "meadow", "nebula", "orchid", "pepper", "quartz", "raven", "summit",
)
_IMAGES = (
    "docker.io/library/nginx:1.25.3", "docker.io/library/redis:7.2.4-alpine",
    "ghcr.io/stefanprodan/podinfo:6.5.1", "quay.io/prometheus/statsd-exporter:v0.26.0",
    "docker.io/envoyproxy/envoy:v1.29.1", "registry.example.com/shop/catalog:v3.4.1",
)


# The tree --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """A generated repository: `deploy/` (the plain tree) and, at the root, the kustomization.yaml
    only the baseline reads. `objects` is how many objects the render must return."""

    root: Path
    objects: int
    namespaces: tuple[str, ...]


def write_tree(root: Path, namespaces: int, objects: int, seed: int = SEED) -> Tree:
    """Write the repository below `root` (which must not exist yet); the same tree for a seed.

    `objects` ConfigMaps, Deployments and Services (in that rotation, app by app) spread over
    `namespaces` Namespaces, which are objects of the tree too.
    """
    if namespaces < 1 or objects < namespaces:
        raise BenchError(f"{objects} objects in {namespaces} namespaces: give at least one object "
                         "per namespace")
    rng = random.Random(seed)
    names = tuple(f"team-{n:02d}" for n in range(namespaces))
    files: dict[str, str] = {
        f"{TREE}/namespaces.yaml": "---\n".join(_namespace(name) for name in names),
    }
    made = 0
    app_index = 0
    while made < objects:
        namespace = names[app_index % namespaces]
        app = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{app_index}"
        docs = [_configmap(rng, app, namespace), _deployment(rng, app, namespace),
                _service(rng, app, namespace)][: objects - made]
        made += len(docs)
        directory = f"{TREE}/{namespace}/{app}"
        if app_index % 3 == 2:
            files[f"{directory}/app.yaml"] = "---\n".join(docs)
        else:
            for stem, doc in zip(("configmap", "deployment", "service"), docs):
                files[f"{directory}/{stem}.yaml"] = doc
        app_index += 1
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    listed = "".join(f"  - {rel}\n" for rel in sorted(files))
    (root / "kustomization.yaml").write_text(
        f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{listed}",
        encoding="utf-8")
    return Tree(root, objects + namespaces, names)


def _namespace(name: str) -> str:
    return (f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n"
            f"    shop.example.com/team: {name}\n")


def _metadata(name: str, namespace: str, app: str) -> str:
    return (f"metadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n"
            f"    app.kubernetes.io/name: {app}\n    app.kubernetes.io/part-of: shop\n")


def _configmap(rng: random.Random, app: str, namespace: str) -> str:
    settings = "".join(f"      {key}: {rng.randrange(10**6)}\n"
                       for key in rng.sample(("limit", "ttl", "pool", "depth", "sample", "backoff",
                                              "burst", "window"), rng.randrange(2, 8)))
    return (f"apiVersion: v1\nkind: ConfigMap\n{_metadata(app, namespace, app)}"
            f"data:\n  LOG_FORMAT: json\n  REGION: eu-west-{rng.randrange(1, 4)}\n"
            f"  config.yaml: |\n    server:\n{settings}")


def _deployment(rng: random.Random, app: str, namespace: str) -> str:
    env = "".join(f"            - name: {key}\n              value: \"{rng.randrange(1, 10_000)}\"\n"
                  for key in rng.sample(("WORKERS", "CACHE_TTL", "POOL_SIZE", "TIMEOUT_MS",
                                         "RETRY_LIMIT", "BATCH_SIZE"), rng.randrange(1, 5)))
    return (
        f"apiVersion: apps/v1\nkind: Deployment\n{_metadata(app, namespace, app)}"
        f"spec:\n  replicas: {rng.randrange(1, 4)}\n  revisionHistoryLimit: 5\n"
        f"  selector:\n    matchLabels:\n      app.kubernetes.io/name: {app}\n"
        f"  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: {app}\n"
        "    spec:\n      containers:\n"
        f"        - name: server\n          image: {rng.choice(_IMAGES)}\n"
        "          args:\n            - --listen=:8080\n"
        "          ports:\n            - name: http\n              containerPort: 8080\n"
        f"          env:\n{env}"
        f"          resources:\n            requests:\n              cpu: {rng.choice((50, 100, 250))}m\n"
        f"              memory: {rng.choice((64, 128, 256))}Mi\n"
        "          readinessProbe:\n            httpGet:\n              path: /ready\n"
        "              port: http\n"
        f"          volumeMounts:\n            - name: config\n              mountPath: /etc/{app}\n"
        f"      volumes:\n        - name: config\n          configMap:\n            name: {app}\n"
    )


def _service(rng: random.Random, app: str, namespace: str) -> str:
    # Headless: the test server's service range is a /24, fewer addresses than Services here.
    return (f"apiVersion: v1\nkind: Service\n{_metadata(app, namespace, app)}"
            f"spec:\n  clusterIP: None\n  selector:\n    app.kubernetes.io/name: {app}\n"
            f"  ports:\n    - name: http\n      port: {rng.choice((80, 8080))}\n      targetPort: http\n")


# Rendering -------------------------------------------------------------------------------------


def render(tree: Tree) -> tuple[Manifest, ...]:
    """gitward's render of `./deploy`, checked: every object, and no kustomize run."""
    try:
        built = build_kustomization(tree.root, KUSTOMIZATION)
    except GitwardError as err:
        raise BenchError(f"build_kustomization failed on the generated tree: {err}") from err
    if built.kustomize:
        raise BenchError(f"the plain tree was built with {built.kustomize}, not in Python")
    if len(built.manifests) != tree.objects:
        raise BenchError(f"build_kustomization rendered {len(built.manifests)} objects, "
                         f"not {tree.objects}")
    return built.manifests


def kustomize(tree: Tree) -> str:
    """`kubectl kustomize` of the repository root: kubectl's render of the same files."""
    done = subprocess.run([KUBECTL, "kustomize", str(tree.root)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise BenchError(f"kubectl kustomize exited {done.returncode}: {done.stderr.strip()[:500]}")
    return done.stdout


def check_kustomize(tree: Tree, output: str) -> None:
    if (found := output.count("\nkind: ") + output.startswith("kind: ")) != tree.objects:
        raise BenchError(f"kubectl kustomize rendered {found} objects, not {tree.objects}")


def check_same_objects(rendered: Sequence[Manifest], output: str) -> None:
    """gitward's objects are kubectl's plus Flux's two owner labels, body for body."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    theirs = {Manifest(doc).id: doc for doc in yaml.load_all(output, Loader=loader) if doc}
    ours = {m.id: m.body for m in rendered}
    if set(ours) != set(theirs):
        missing = sorted(map(str, set(theirs) ^ set(ours)))[:5]
        raise BenchError(f"gitward and kubectl kustomize render different objects: {missing}")
    owner = {f"{OWNER_GROUP}/name": KUSTOMIZATION.name,
             f"{OWNER_GROUP}/namespace": KUSTOMIZATION.namespace}
    for key, body in theirs.items():
        labelled = copy.deepcopy(body)
        meta = labelled.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), **owner}
        if labelled != ours[key]:
            raise BenchError(f"{key}: gitward's render differs from kubectl kustomize's")


def run_render(tree: Tree, runs: int) -> tuple[Result, tuple[Manifest, ...]]:
    """The render line; also the rendered objects, for the sync lines."""
    rendered = render(tree)
    output = kustomize(tree)
    check_same_objects(rendered, output)
    checked = _Checked()
    timing = interleaved(
        checked.setup(lambda: lambda: render(tree), lambda _: None),
        checked.setup(lambda: lambda: kustomize(tree), lambda out: check_kustomize(tree, out)),
        runs)
    checked.settle()
    speedup = timing.baseline / timing.seconds if timing.seconds > 0 else float("inf")
    result = Result(
        name="sync render plain tree", size=tree.objects, unit="objects", timing=timing,
        goal=f"<={1 / RENDER_MIN_SPEEDUP:g}x ({RENDER_MIN_SPEEDUP:g}x faster)",
        met=speedup >= RENDER_MIN_SPEEDUP,
        baseline_name="kubectl kustomize of the same files, listed in a generated kustomization.yaml "
        "(subprocess)",
        note=f"{speedup:.1f}x faster than kubectl kustomize; build_kustomization includes Flux's "
        "post-build (owner labels, duplicate check)",
    )
    return result, rendered


# Syncing ---------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """The running API server, gitward's client on it, and kubectl's arguments for it."""

    api: KubeAPI
    client: ClusterClient
    workdir: Path

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.api.kubeconfig), "--cache-dir",
             str(self.workdir / "kubectl-cache"), *args],
            capture_output=True, text=True, check=False)

    def kubectl_apply(self, path: Path, *, dry_run: bool) -> subprocess.CompletedProcess[str]:
        """`kubectl apply --server-side` as gitward's field manager (the same request bodies)."""
        return self.kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}",
                            "--force-conflicts", *(["--dry-run=server"] if dry_run else []),
                            "-f", str(path))


@contextmanager
def cluster(workdir: Path) -> Iterator[Cluster | None]:
    """A fresh kube-apiserver and a client on it; None when its binaries are not built."""
    try:
        binaries = KubeBinaries.locate()
    except KubeEnvError:
        yield None
        return
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the server's own cert
    try:
        api = KubeAPI(binaries).start()
    except KubeEnvError as err:
        raise BenchError(f"the kube-apiserver could not be started: {err}") from err
    try:
        with connect(api.kubeconfig) as client:
            yield Cluster(api, client, workdir)
    finally:
        api.stop()


def missing_binaries() -> str:
    """Why the sync lines cannot run here ('' when they can)."""
    try:
        KubeBinaries.locate()
    except KubeEnvError as err:
        return str(err)
    return ""


def moved(manifests: Sequence[Manifest], suffix: str) -> tuple[Manifest, ...]:
    """The same objects in namespaces renamed `<namespace><suffix>` (a fresh copy of the tree)."""
    if not suffix:
        return tuple(manifests)
    out = []
    for m in manifests:
        body = copy.deepcopy(m.body)
        meta: dict[str, Any] = body["metadata"]  # type: ignore[assignment]
        key = "name" if m.kind == "Namespace" else "namespace"
        meta[key] = f"{meta[key]}{suffix}"
        out.append(Manifest(body, m.origin))
    return tuple(out)


def write_objects(path: Path, manifests: Sequence[Manifest]) -> Path:
    """The objects as gitward sends them (owner labels, normalized ports), in its apply order."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump_all([m.body for m in prepare(manifests, KUSTOMIZATION)], Dumper=dumper,
                                  sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Requests:
    """HTTP requests one sync sent, by kind."""

    methods: Counter[str] = field(default_factory=Counter)
    writes: list[tuple[str, str]] = field(default_factory=list)
    dry_runs: int = 0

    @property
    def total(self) -> int:
        return sum(self.methods.values())


@contextmanager
def requests_sent(client: ClusterClient) -> Iterator[Requests]:
    """Every request the client sends inside the block, counted at its urllib3 pool (each one
    still goes out): writes are POST, PUT, PATCH and DELETE without `dryRun=All`."""
    pool = client.api.rest_client.pool_manager
    real = pool.request
    seen = Requests()

    def spy(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        verb = method.upper()
        seen.methods[verb] += 1
        if verb in _WRITE_METHODS:
            if "dryRun=All" in url:
                seen.dry_runs += 1
            else:
                seen.writes.append((verb, url))
        return real(method, url, *args, **kwargs)

    pool.request = spy  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        pool.request = real  # type: ignore[method-assign]


def store_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: compared before and after a sync that must write nothing."""
    with store.engine.connect() as connection:
        tables = [row[0] for row in connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(map(tuple, connection.exec_driver_sql(f'SELECT * FROM "{t}"')), key=repr)
                for t in tables}


def _sync(cluster: Cluster, store: Store, manifests: Sequence[Manifest]) -> SyncResult:
    return sync_kustomization(store, KUSTOMIZATION, manifests, REVISION, client=cluster.client,
                              now=datetime.now(UTC))


def check_applied(result: SyncResult, expected: int, change: Change, doing: str) -> None:
    if not result.ok:
        raise BenchError(f"the {doing} failed: {result.summary()[:500]}")
    counts = Counter(a.change for a in result.applied)
    if counts != Counter({change: expected}) or result.pruned:
        shown = ", ".join(f"{n} {c.past}" for c, n in counts.items()) or "nothing"
        pruned = f", {len(result.pruned)} pruned" if result.pruned else ""
        raise BenchError(f"the {doing} should leave all {expected} objects {change.past}; "
                         f"they were: {shown}{pruned}")


def check_kubectl(done: subprocess.CompletedProcess[str], expected: int, marker: str) -> None:
    found = sum(1 for line in done.stdout.splitlines() if line.endswith(marker))
    if done.returncode != 0 or found != expected:
        raise BenchError(f"kubectl apply exited {done.returncode} and reported {found} of "
                         f"{expected} objects {marker}: {done.stderr.strip()[:300]}")


@dataclass
class _Generations:
    """Fresh namespaces for every first apply: the subject's first run uses the tree's own (and
    its store is kept for the no-op); every later run, and every kubectl run, a renamed copy."""

    cluster: Cluster
    manifests: tuple[Manifest, ...]
    stores: ExitStack
    number: int = 0
    kept: Store | None = None

    def subject(self) -> Callable[[], SyncResult]:
        suffix = "" if self.kept is None else f"-g{self.number}"
        self.number += 1
        objects = moved(self.manifests, suffix)
        store = self.stores.enter_context(
            open_store(state_url(str(self.cluster.workdir / f"first-apply{suffix}.db"))))
        if self.kept is None:
            self.kept = store
        return lambda: _sync(self.cluster, store, objects)

    def baseline(self) -> Callable[[], subprocess.CompletedProcess[str]]:
        suffix = f"-k{self.number}"
        self.number += 1
        path = write_objects(self.cluster.workdir / f"first-apply{suffix}.yaml",
                             moved(self.manifests, suffix))
        return lambda: self.cluster.kubectl_apply(path, dry_run=False)


def run_sync(cluster: Cluster, manifests: tuple[Manifest, ...], runs: int) -> list[Result]:
    """The first-apply and no-op lines on the rendered objects."""
    objects = len(manifests)
    with ExitStack() as stores:
        generations = _Generations(cluster, manifests, stores)
        checked = _Checked()
        first = interleaved(
            checked.setup(generations.subject,
                          lambda r: check_applied(r, objects, Change.CREATE, "first apply")),
            checked.setup(generations.baseline,
                          lambda done: check_kubectl(done, objects, "serverside-applied")),
            runs)
        checked.settle()
        if generations.kept is None:
            raise BenchError("the first apply never ran")
        noop, noops = _time_noop(cluster, generations.kept, manifests, runs)
    requests = noops.last
    return [
        Result(
            name="sync first apply", size=objects, unit="objects", timing=first,
            goal="none: time only", met=True,
            baseline_name="kubectl apply --server-side -f (the same objects, fresh namespaces; "
            "subprocess)",
            note=f"each run into namespaces that do not exist yet; {generations.number} copies "
            "of the tree applied",
        ),
        Result(
            name="sync no-op reconcile", size=objects, unit="objects", timing=noop,
            goal="<1x and 0 writes", met=noop.ratio < 1 and not (noops.writes or noops.rows_changed),
            baseline_name="kubectl apply --server-side --dry-run=server -f (the same objects; "
            "subprocess)",
            note=f"all {runs + 1} runs: {noops.writes} writes to the API server, {noops.rows_changed} "
            f"store rows changed; per sync {requests.total:,} requests ({_methods(requests)}; "
            f"{requests.dry_runs:,} dry-run applies), client CPU {noop.cpu:.2f} s, the rest waiting "
            "on the server",
        ),
    ]


def _methods(requests: Requests) -> str:
    return ", ".join(f"{n:,} {verb}" for verb, n in sorted(requests.methods.items()))


@dataclass
class _NoOps:
    """What the no-op runs wrote, summed over every run, and the last run's requests."""

    writes: int = 0
    rows_changed: int = 0
    last: Requests = field(default_factory=Requests)


Rows = dict[str, list[tuple[Any, ...]]]


def _time_noop(cluster: Cluster, store: Store, manifests: tuple[Manifest, ...],
               runs: int) -> tuple[Timing, _NoOps]:
    """Sync the applied tree again with its own store, against kubectl's server dry-run.

    Every object must come out unchanged (else the run is no no-op: a wrong answer); writes to
    the API server and changed store rows are counted, not refused: they miss the goal."""
    objects = len(manifests)
    rendered = write_objects(cluster.workdir / "rendered.yaml", manifests)
    seen = _NoOps()

    def subject() -> Callable[[], tuple[SyncResult, Requests, Rows]]:
        before = store_rows(store)

        def work() -> tuple[SyncResult, Requests, Rows]:
            with requests_sent(cluster.client) as requests:
                result = _sync(cluster, store, manifests)
            return result, requests, before
        return work

    def check(outcome: tuple[SyncResult, Requests, Rows]) -> None:
        result, requests, before = outcome
        check_applied(result, objects, Change.UNCHANGED, "no-op reconcile")
        after = store_rows(store)
        seen.writes += len(requests.writes)
        seen.rows_changed += sum(len(set(before.get(t, ())) ^ set(after.get(t, ())))
                                 for t in {*before, *after})
        seen.last = requests

    checked = _Checked()
    timing = interleaved(
        checked.setup(subject, check),
        checked.setup(lambda: lambda: cluster.kubectl_apply(rendered, dry_run=True),
                      lambda done: check_kubectl(done, objects, "serverside-applied (server dry run)")),
        runs)
    checked.settle()
    return timing, seen


T = TypeVar("T")


class _Checked:
    """Setups for `interleaved` whose every run's answer is checked, untimed, before the next
    run starts (and by `settle` after the last): a fast wrong answer is no result."""

    def __init__(self) -> None:
        self._pending: Callable[[], None] | None = None

    def setup(self, prepare_run: Callable[[], Callable[[], T]], check: Callable[[T], None]) -> Setup:
        def setup() -> Callable[[], None]:
            self.settle()
            work = prepare_run()

            def timed() -> None:
                result = work()
                self._pending = lambda: check(result)
            return timed
        return setup

    def settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending()


# Running ---------------------------------------------------------------------------------------


@contextmanager
def _tree(namespaces: int, objects: int) -> Iterator[Tree]:
    """The generated tree, on /dev/shm when there is one (the render is about the CPU, not a disk)."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="gitward-bench-sync-",
                                     dir=shm if shm.is_dir() else None) as scratch:
        yield write_tree(Path(scratch) / "repo", namespaces, objects)


def run(namespaces: int, objects: int, runs: int, workdir: Path) -> list[Result]:
    """The render line, then (with a kube-apiserver) the first-apply and no-op lines."""
    if shutil.which(KUBECTL) is None:
        raise BenchError(f"kubectl is not installed at {KUBECTL}: it is every sync line's baseline")
    with _tree(namespaces, objects) as tree:
        rendered_line, manifests = run_render(tree, runs)
    try:
        with cluster(workdir) as running:
            if running is None:
                skipped = f"first apply and no-op reconcile not run: {missing_binaries()}"
                return [replace(rendered_line, note=f"{rendered_line.note}; {skipped}")]
            return [rendered_line, *run_sync(running, manifests, runs)]
    except GitwardError as err:  # the client or a store could not be opened
        raise BenchError(f"the sync lines could not run: {err}") from err


def profile(namespaces: int, objects: int, limit: int = 25) -> str:
    """cProfile of one no-op reconcile of the tree (applied first, untimed), with its requests."""
    with tempfile.TemporaryDirectory(prefix="gitward-bench-") as scratch, \
            _tree(namespaces, objects) as tree, cluster(Path(scratch)) as running:
        if running is None:
            return f"--- sync profile not run: {missing_binaries()}"
        manifests = render(tree)
        with open_store(state_url(str(Path(scratch) / "profile.db"))) as store:
            check_applied(_sync(running, store, manifests), len(manifests), Change.CREATE, "first apply")
            profiler = cProfile.Profile()
            with requests_sent(running.client) as seen:
                result = profiler.runcall(_sync, running, store, manifests)
            check_applied(result, len(manifests), Change.UNCHANGED, "no-op reconcile")
    out = io.StringIO()
    out.write(f"--- no-op reconcile of {len(manifests):,} objects: {seen.total:,} requests "
              f"({_methods(seen)}), {len(seen.writes)} writes\n")
    stats = pstats.Stats(profiler, stream=out)
    out.write("own time by where the code lives (profiled, so inflated; socket reads and writes are "
              "mostly the wait for the server):\n")
    out.writelines(f"  {seconds:7.3f} s  {place}\n" for place, seconds in _by_place(stats))
    stats.sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def _by_place(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time summed by package: gitward's engine, each library, the socket, the standard library."""
    totals: dict[str, float] = {}
    for (filename, _, name), (_, _, own, *_) in stats.stats.items():  # type: ignore[attr-defined]
        if "_ssl._SSLSocket" in name or "_socket.socket" in name:
            place = "socket I/O"
        elif "/site-packages/" in filename:
            place = filename.split("/site-packages/", 1)[1].split("/", 1)[0]
        elif "/engine/" in filename:
            place = "engine (gitward)"
        elif "/bench/" in filename:
            place = "bench (the request counter)"
        else:
            place = "python standard library and builtins"
        totals[place] = totals.get(place, 0.0) + own
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)
