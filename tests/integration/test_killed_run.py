"""A `gitward run` SIGKILLed anywhere blocks nothing for long and loses nothing.

Each case starts a `gitward run` on examples/homelab with a new podinfo tag in the registry,
watches it from outside (its log, its store, its work directory, a hook on the remote) until it
reaches the case's point (scan, plan, clone, commit, push, each database write, or a seeded
random moment after one of them), kills it there with SIGKILL, and starts another on the same
store and work directory. The second one must push the update within a lease's life plus one
interval (`BOUND`), as exactly one commit, leave no `*.lock` or half-written file behind, and
the dead one's leases must all have run out a minute after its death. (gitward's own `*.lock`
files beside the source caches are `flock` files: the kernel frees their lock with the process,
so they are never stale.) No hook in gitward: the points are what an observer sees, so a kill
lands at or just after each one; a push waits in the remote's pre-receive hook until the kill,
so the points up to it are caught before gitward can move past them.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.reconcile.heartbeat import LEASE_TTL
from engine.store.db import open_store, state_url
from engine.store.leases import list_leases
from tests.conftest import ROOT
from tests.integration.homelab_env import PODINFO, Homelab, environ, log_lines, make_homelab
from tests.integration.registry_env import RunningRegistry, seed_tags

pytestmark = pytest.mark.slow

SEED = 12
"""Seeds the random moments of the cases that kill a while after their point."""
INTERVAL = timedelta(seconds=1)
"""The homelab's ImageRepository and ImageUpdateAutomation interval (homelab_env.py)."""
START = timedelta(seconds=30)
"""What a Python process may take to start on a loaded test machine: not gitward's bound."""
BOUND = LEASE_TTL + INTERVAL + START
"""How long after the kill the update may take to be pushed: the issue's bound (a minute, the
life of a dead holder's lease, plus one interval) and the new process's start."""
REACH = 90.0
"""How long the first run gets to reach its point: a bound on waiting, not a timing assert."""
PARALLEL = 7
"""Cases run at once, each on its own remote, registry repository, store and work directory."""


@dataclass
class Watched:
    """What the observer sees of the first run: its log, store, work directory and remote."""

    lab: Homelab
    log: Path
    started: float

    def lines(self) -> list[dict[str, str]]:
        return log_lines(self.log.read_text()) if self.log.exists() else []

    def logged(self, kind: str, *, msg: str | None = None, outcome: str | None = None) -> bool:
        return any(line.get("kind") == kind and (msg is None or line.get("msg") == msg)
                   and (outcome is None or line.get("outcome") == outcome)
                   for line in self.lines())

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        path = Path(self.lab.state)
        if not path.exists():
            return []
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
        except sqlite3.Error:
            return []
        try:
            return db.execute(sql).fetchall()
        except sqlite3.Error:  # not created yet, or locked by the writer this instant
            return []
        finally:
            db.close()

    def in_cache(self, name: str) -> Path | None:
        """`name` in the executor's cache repository's .git, when there."""
        found = [p for p in (self.lab.workdir / "git").glob(f"*/.git/{name}") if p.exists()]
        return found[0] if found else None


Point = Callable[[Watched], bool]


def after(seconds: float) -> Point:
    return lambda w: time.monotonic() - w.started >= seconds


def then(point: Point, seconds: float) -> Point:
    """`point`, then `seconds` more."""
    seen: list[float] = []

    def reached(w: Watched) -> bool:
        if not seen and point(w):
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= seconds
    return reached


def lease(prefix: str) -> Point:
    return lambda w: any(str(name).startswith(prefix)
                         for (name,) in w.rows("SELECT name FROM leases"))


def action(status: str) -> Point:
    return lambda w: bool(w.rows(f"SELECT id FROM actions WHERE status = '{status}'"))


def receiving(w: Watched) -> bool:
    return (w.lab.bare.path / "receiving").exists()


def pushed(w: Watched) -> bool:
    return receiving(w) and len(w.lab.bare.subjects("main")) > 1


def in_cache(name: str) -> Point:
    return lambda w: w.in_cache(name) is not None


def committed(w: Watched) -> bool:
    reflog = w.in_cache("logs/HEAD")
    return reflog is not None and "commit" in reflog.read_text()


rng = random.Random(SEED)
POINTS: dict[str, tuple[Point, bool]] = {
    # name: (the point, whether the whole process group dies with it: a container or a unit
    # killed; else only gitward, and the git it started runs on)
    "starting": (after(rng.uniform(0.2, 2.0)), True),
    "daemon-lease": (lease("daemon:"), True),
    "scanning": (lease("obj:ImageRepository/"), True),
    "scanning-later": (then(lease("obj:ImageRepository/"), rng.uniform(0.0, 0.3)), True),
    "scan-recorded": (lambda w: bool(w.rows("SELECT id FROM image_scans")), True),
    "tags-recorded": (lambda w: bool(w.rows("SELECT 1 FROM image_tags")), True),
    "scanned": (lambda w: w.logged("ImageRepository", outcome="ok"), True),
    "planning": (lease("obj:ImageUpdateAutomation/"), True),
    "decision-recorded": (lambda w: bool(w.rows("SELECT id FROM policy_decisions")), True),
    "action-planned": (action("planned"), True),
    "branch-lease": (lease("git:"), True),
    "branch-lease-later": (then(lease("git:"), rng.uniform(0.0, 0.3)), True),
    "cloning": (lambda w: (w.lab.workdir / "git").exists(), True),
    "fetched": (in_cache("shallow"), True),
    "committing": (in_cache("GITWARD_COMMIT_MSG"), True),
    "committed": (committed, True),
    "pushing": (receiving, True),
    "pushing-git-survives": (receiving, False),
    "pushed": (pushed, False),
    "action-done": (action("done"), True),
    "reconciled": (lambda w: w.logged("ImageUpdateAutomation", outcome="ok"), True),
}

BUILT = {"6.5.1": "2026-01-05T10:00:00Z", "6.6.0": "2026-02-05T10:00:00Z"}
"""Build times, so the rollback gate sees 6.6.0 is newer though one scan finds both."""

HOOK = """#!/bin/sh
touch {receiving}
while [ -f {block} ]; do sleep 0.05; done
"""


def start(lab: Homelab, log: Path) -> subprocess.Popen[str]:
    """`gitward run` in a session of its own (so a case can kill its process group)."""
    argv = lab.gitward("run", "--repo", str(lab.repo), "--workdir", str(lab.workdir),
                       "--log-format", "json")
    with log.open("w") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=environ(), stdout=subprocess.DEVNULL,
                                stderr=out, text=True, start_new_session=True)


def case(name: str, root: Path, registry: RunningRegistry) -> list[str]:
    """Kill a run at `name`'s point, start another; what went wrong, one line each."""
    point, group = POINTS[name]
    root.mkdir()
    lab = make_homelab(root, registry.host, str(root / "state.db"))
    seed_tags(registry.url, lab.image.split("/", 1)[1], ["6.5.1", "6.6.0"], created=BUILT)
    block = lab.bare.path / "block"
    hook = lab.bare.path / "hooks" / "pre-receive"
    hook.write_text(HOOK.format(receiving=lab.bare.path / "receiving", block=block))
    hook.chmod(0o755)
    block.touch()  # the first push waits in the hook until the kill
    first_log = root / "first.log"
    watched = Watched(lab, first_log, time.monotonic())
    first = start(lab, first_log)
    try:
        deadline = time.monotonic() + REACH
        while not point(watched):
            if first.poll() is not None or time.monotonic() > deadline:
                return [f"{name}: the first run never reached its point:\n"
                        f"{first_log.read_text()[-3000:]}"]
            if name != "pushing" and name != "pushing-git-survives" and receiving(watched):
                block.unlink(missing_ok=True)
            time.sleep(0.02)
        if group:
            os.killpg(first.pid, signal.SIGKILL)
        else:
            first.kill()
        first.wait()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    killed = datetime.now(UTC)
    block.unlink(missing_ok=True)
    return restart(name, lab, root, killed, first.pid)


def restart(name: str, lab: Homelab, root: Path, killed: datetime, dead: int) -> list[str]:
    second_log = root / "second.log"
    second = start(lab, second_log)
    problems = []
    try:
        began = time.monotonic()
        deadline = began + BOUND.total_seconds()
        while (f"image: {lab.image}:6.6.0 # {{" not in lab.bare.read(PODINFO)
               or not automated(second_log)):
            if second.poll() is not None or time.monotonic() > deadline:
                return [f"{name}: 6.6.0 not pushed within {BOUND} of the kill:\n"
                        f"{second_log.read_text()[-3000:]}"]
            time.sleep(0.5)
        took = time.monotonic() - began
        # the commit is out; let the second run carry on a few passes (it must not push again)
        deadline = time.monotonic() + 3 * INTERVAL.total_seconds()
        while time.monotonic() < deadline and second.poll() is None:
            time.sleep(0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        code = second.wait(timeout=60)
    text = second_log.read_text()
    if code != 0 or "Traceback" in text or "internal error" in text:
        problems.append(f"{name}: the second run ended with {code}:\n{text[-3000:]}")
    subjects = lab.bare.subjects("main")
    if subjects != ["Update podinfo image", "Initial commit"]:
        problems.append(f"{name}: the remote's history is {subjects}")
    seeded = (lab.repo / PODINFO).read_text()
    if lab.bare.read(PODINFO) != seeded.replace(f"{lab.image}:6.5.1", f"{lab.image}:6.6.0"):
        problems.append(f"{name}: {PODINFO} is not the seed with the tag replaced")
    left = [str(p) for p in lab.workdir.rglob("*") if p.is_file() and (
        p.name.endswith(".gitward") or (p.name.endswith(".lock") and ".git" in p.parts))]
    if left:
        problems.append(f"{name}: files left in the work directory: {left}")
    with open_store(state_url(lab.state)) as store:
        leases = list_leases(store)
    dead_prefix = f":{dead}:"
    stuck = [lease for lease in leases
             if dead_prefix not in lease.holder or lease.expires_at > killed + LEASE_TTL]
    if stuck:
        problems.append(f"{name}: leases left that outlive a minute after the kill: {stuck}")
    held = sum(line.get("outcome") == "held" for line in log_lines(text))
    print(f"{name:22} carried through {took:5.1f}s after the kill; the second run waited "
          f"(outcome=held) {held} time(s)")
    return problems


def automated(log: Path) -> bool:
    """Whether the run logging to `log` has reconciled the automation (pushed or found nothing
    to do): past its start, it handles SIGTERM."""
    return any(line.get("kind") == "ImageUpdateAutomation" and line.get("outcome") == "ok"
               for line in log_lines(log.read_text()))


def test_a_run_killed_at_any_point_is_carried_through_by_the_next(
        open_registry: RunningRegistry, tmp_path: Path) -> None:
    with ThreadPoolExecutor(PARALLEL) as pool:
        found = list(pool.map(lambda name: case(name, tmp_path / name, open_registry), POINTS))
    problems = [line for lines in found for line in lines]
    assert problems == [], "\n".join(problems)
    assert len(POINTS) >= 20
