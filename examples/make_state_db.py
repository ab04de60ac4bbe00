"""Build `state.db.example` by running examples/homelab through gitward's own code, day by day.

Usage: `python examples/make_state_db.py [OUTPUT]` (default: the repository root's
`state.db.example`). It needs the Kubernetes API server the tests use, built once per machine
by `bash tests/env/kube.sh build`; without it the script exits 2 and says so.

Every row comes from the code `gitward run` runs, on real parts: the source is fetched with
git from a throw-away bare repository, tag lists are imported as `gitward images import` does
(the recorded lists are in examples/tags/, one per image and day: ghcr.io/example/ledger is
not a registry anyone can reach), each scan is followed by its policies' decisions, the
automations plan on the fetched checkout reusing those decisions and push their commits to the
bare repository (one plan per step for both automations, as `gitward apply` makes it), and the
Kustomization is applied to a fresh etcd + kube-apiserver.

The manifests keep their URL, ssh://git@github.com/example/homelab, so the database holds no
path of this machine: gitward is given an ssh command (`GATE`) that serves every fetch and push
from the bare repository. git's own URL rewriting cannot do it, since gitward's git runs with
the inherited GIT_* variables removed. One clock drives every reconciler, commits are dated by
it, plan ids derive from it and the lease holder is fixed, so two runs write the same rows.

The story (UTC):

  Mon 3 Nov  11:40  Alex commits examples/homelab (ledger 20251103-1130-sha-4d5e6f7, podinfo
                    6.5.1) and a ConfigMap, ledger/ledger-config.
             12:00  The source is fetched and the Kustomization flux-system applied: every
                    object is created.
             12:05  First tag lists: both policies select what git already deploys. ledger's
                    `sha-1a2b3c4` and cosign `.sig` tags are excluded by its image repository.
  Tue 4 Nov  08:10  ledger 20251103-1745 and 20251104-0805 appear; the policy selects 0805, but
                    `hold 10m` keeps it out of git (a gated decision).
             08:25  The next scan: the hold is over; "Update ledger image" is pushed.
             08:26  Fetched and applied: Deployment ledger/ledger is updated.
             18:00  Alex removes ledger-config; at 18:01 gitward applies that and prunes it.
  Wed 5 Nov  17:00  podinfo 6.5.2 to 6.7.0 and 7.0.0-rc.1, ledger 20251105-1020 and -1650 appear.
                    podinfo's range `>=6.0.0 <7.0.0` picks 6.7.0, pushed at once; ledger's
                    1650 is held.
             17:01  Applied: Deployment podinfo/podinfo is updated.
             17:15  ledger 20251105-1650 is pushed; applied at 17:16.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.cli.images import read_tag_file
from engine.errors import Problems
from engine.evaluate.order import dependency_order
from engine.model import GitSource, RuleSet
from engine.observe.cluster import ClusterClient, connect
from engine.reconcile.images import decide_policy, policies_of, record_tags
from engine.reconcile.order import OrderedReconcile
from engine.reconcile.repo import read_marked_tree
from engine.reconcile.sources import reconcile_source
from engine.reconcile.commits import apply_commits
from engine.reconcile.updates import plan_checkout
from engine.rules.load import load_repo
from engine.store.db import Store, open_store
from engine.store.reconciles import record_reconcile

ROOT = Path(__file__).resolve().parent.parent
HOMELAB = ROOT / "examples" / "homelab"
TAGS = ROOT / "examples" / "tags"
HOLDER = "make-state-db"
AUTHOR = "Alex Doe <alex@example.com>"
LEDGER_CONFIG = "cluster/apps/ledger/config.yaml"
LEDGER_CONFIG_TEXT = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: ledger-config
  namespace: ledger
data:
  REDIS_URL: redis://redis.infrastructure:6379
"""
"""The story's only file that examples/homelab lacks: committed on 3 Nov, removed on 4 Nov."""

GATE = """\
import os, shlex, sys
if "-G" in sys.argv:  # git probing which ssh this is: a plain one, with no options to pass
    sys.exit(1)
service, _ = shlex.split(sys.argv[-1])
if service not in ("git-upload-pack", "git-receive-pack"):
    sys.exit(f"refused: {service}")
os.execvp("git", ["git", service.removeprefix("git-"), sys.argv[1]])
"""
"""The ssh command's stand-in: `python gate.py BARE_REPO [ssh args] HOST COMMAND` runs the
requested git service on BARE_REPO, whatever host and path the URL names."""


def at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2025, 11, day, hour, minute, tzinfo=UTC)


class Clock:
    """The scenario's time: set by each step, read by every reconciler."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Scenario:
    """One source, its image repositories and Kustomizations, reconciled at `clock`'s time."""

    store: Store
    rules: RuleSet
    cluster: ClusterClient
    work: Path
    ssh_command: str
    clock: Clock

    @property
    def source(self) -> GitSource:
        [source] = self.rules.sources
        return source

    def plan_id(self, step: str) -> str:
        return hashlib.sha256(f"{step} {self.clock().isoformat()}".encode()).hexdigest()[:12]

    def fetch(self) -> Path:
        """The GitRepository reconcile: the revision is recorded (and an event when it is new)."""
        outcome = reconcile_source(self.store, self.source, cache_dir=self.work / "cache",
                                   ssh_command=self.ssh_command, clock=self.clock)
        if outcome.checkout is None:
            raise SystemExit(f"make_state_db: fetch failed: {outcome.error}")
        return outcome.checkout.path

    def scan(self, day: str) -> None:
        """Each ImageRepository's recorded tag list for `day`, then its policies' decisions."""
        deployed = read_marked_tree(self.fetch(), self.rules).deployed
        for repository in self.rules.image_repositories:
            tags = read_tag_file(str(TAGS / f"{repository.name}-{day}.txt"))
            scan = record_tags(self.store, repository, tags, started_at=self.clock(),
                               finished_at=self.clock())
            selected = []
            for policy in policies_of(self.rules, repository):
                decision = decide_policy(self.store, self.rules, policy, now=self.clock(),
                                         deployed=deployed.get(policy.key.ref)).decision
                selected.append(f"{policy.key.ref}={decision.selected_tag}")
            record_reconcile(self.store, repository.key, outcome="ok", revision=",".join(selected),
                             message=f"scan #{scan.id}: {scan.tag_count} tags", at=self.clock())

    def update(self) -> None:
        """The automations: plan on the fetched checkout with the decisions just made, push."""
        now = self.clock()
        planned = plan_checkout(read_marked_tree(self.fetch(), self.rules), self.rules, self.store, now, record=True, reuse=True)
        done = apply_commits(self.store, self.rules, planned, now, workdir=self.work / "cache",
                             ssh_command=self.ssh_command, token=None, holder=HOLDER,
                             plan_id=self.plan_id("commit"))
        for applied in done:
            say(now, f"{applied.action.target}: {applied.summary}")
        for automation in self.rules.image_updates:  # each run, as `gitward run` records it
            mine = [a for a in done if automation.key.ref in a.action.automations]
            record_reconcile(self.store, automation.key, outcome="ok",
                             revision=",".join(a.commit for a in mine if a.commit),
                             message="; ".join(f"{a.action.target}: {a.summary}" for a in mine)
                             or "no updates", at=now)

    def sync(self) -> None:
        """Every Kustomization, in dependency order, at the source's latest revision."""
        self.fetch()
        run = OrderedReconcile(self.store, self.rules, self.cluster, with_source=False,
                               cache_dir=self.work / "cache", ssh_command=self.ssh_command,
                               clock=self.clock, plan_id=self.plan_id("apply"))
        for ks in dependency_order(self.rules.kustomizations):
            done = run.reconcile(ks)
            if done.result is None or not done.result.ok:
                raise SystemExit(f"make_state_db: Kustomization {ks.key.ref} failed: {done}")
            say(self.clock(), f"Kustomization {ks.key.ref} applied {done.revision}")


def say(now: datetime, text: str) -> None:
    print(f"{now:%d %b %H:%M}  {text}", file=sys.stderr)


def git(*args: str, cwd: Path, when: datetime | None = None) -> None:
    """Alex's git: no user or system config, a fixed identity, and a pinned date when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    name, email = AUTHOR.removesuffix(">").split(" <")
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C", TZ="UTC",
               GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email,
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email)
    if when is not None:
        env.update(GIT_AUTHOR_DATE=when.isoformat(), GIT_COMMITTER_DATE=when.isoformat())
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"make_state_db: git {' '.join(args)}: {done.stderr.strip()}")


def publish(work: Path) -> tuple[Path, str]:
    """Commit examples/homelab (and LEDGER_CONFIG) into a bare repository; return Alex's clone
    and the ssh command that serves the bare repository under the manifests' URL."""
    seed, bare = work / "seed", work / "homelab.git"
    shutil.copytree(HOMELAB, seed)
    (seed / LEDGER_CONFIG).write_text(LEDGER_CONFIG_TEXT)
    git("init", "--quiet", "--initial-branch=main", cwd=seed)
    git("add", "--all", cwd=seed)
    git("commit", "--quiet", "-m", "Add podinfo and ledger", cwd=seed, when=at(3, 11, 40))
    git("init", "--quiet", "--bare", str(bare), cwd=work)
    git("remote", "add", "origin", str(bare), cwd=seed)
    git("push", "--quiet", "origin", "main", cwd=seed)
    gate = work / "gate.py"
    gate.write_text(GATE)
    return seed, " ".join(shlex.quote(part) for part in (sys.executable, str(gate), str(bare)))


def retire_config(seed: Path, when: datetime) -> None:
    """Alex's second commit, on top of gitward's: the ledger's ConfigMap goes."""
    git("pull", "--quiet", "--ff-only", "origin", "main", cwd=seed)
    git("rm", "--quiet", LEDGER_CONFIG, cwd=seed)
    git("commit", "--quiet", "-m", "Remove ledger-config: the settings are in the Deployment",
        cwd=seed, when=when)
    git("push", "--quiet", "origin", "main", cwd=seed)


def record_example(store: Store, kubeconfig: Path, work: Path) -> None:
    """Play the story into an open, empty store against the empty cluster behind `kubeconfig`
    (the view tests play it on PostgreSQL too); `work` is an empty scratch directory."""
    seed, ssh_command = publish(work)
    problems = Problems()
    rules = load_repo(seed, problems).rules
    problems.raise_if_errors()
    clock = Clock(at(3, 12, 0))
    with connect(kubeconfig) as cluster:
        story = Scenario(store, rules, cluster, work, ssh_command, clock)
        story.sync()
        for now, day in ((at(3, 12, 5), "2025-11-03"), (at(4, 8, 10), "2025-11-04"),
                         (at(4, 8, 25), "2025-11-04")):
            clock.now = now
            story.scan(day)
            story.update()
        clock.now = at(4, 8, 26)
        story.sync()
        retire_config(seed, at(4, 18, 0))
        clock.now = at(4, 18, 1)
        story.sync()
        for now, day in ((at(5, 17, 0), "2025-11-05"), (at(5, 17, 15), "2025-11-05")):
            clock.now = now
            story.scan(day)
            story.update()
            clock.now = now + timedelta(minutes=1)
            story.sync()


@contextmanager
def api_server() -> Iterator[Path]:
    """A fresh etcd + kube-apiserver, as the tests start it; its kubeconfig."""
    sys.path.insert(0, str(ROOT))
    from tests.integration.kube_env import KubeAPI, KubeEnvError

    try:
        api = KubeAPI().start()
    except KubeEnvError as err:
        print(f"make_state_db: the Kubernetes API server could not be started: {err}\n"
              "  build it once with `bash tests/env/kube.sh build` (as root)", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        yield api.kubeconfig
    finally:
        api.stop()


def build(output: Path) -> None:
    for stale in (output, output.with_name(output.name + "-wal"), output.with_name(output.name + "-shm")):
        stale.unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="make-state-db-"))
    try:
        with api_server() as kubeconfig, open_store(f"sqlite:///{output.resolve()}") as store:
            record_example(store, kubeconfig, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # One self-contained file: fold the WAL back in and leave rollback-journal mode; small
    # pages, as most tables hold a few rows.
    connection = sqlite3.connect(output)
    try:
        connection.execute("PRAGMA journal_mode = DELETE")
        connection.execute("PRAGMA page_size = 1024")
        connection.execute("VACUUM")
    finally:
        connection.close()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "state.db.example"
    build(target)
    print(f"wrote {target}")
