"""`gitward watch`: from a file save to the plan printed, on a copy of examples/homelab.

The subject is the real command, `gitward --state DB watch COPY -o json` (default debounce),
running as a subprocess for the whole benchmark: each timed run rewrites podinfo's
deployment.yaml (alternating 6.5.1 and 6.5.2, so every save changes the plan) and waits for the
JSON line that names the file. The baseline is the floor of any watcher: a bare watchdog
observer in this process seeing the same kind of save in another copy (event delivery alone).
Goal (from the issue): under 300 ms, median over 20 saves.

After every timed run, untimed, the answer is checked: the plan was triggered by the saved file
alone, is clean, and proposes podinfo's update from the value just written to 6.6.0.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from bench import BenchError, Result, interleaved
from engine.errors import Problems
from engine.model import ImageRepository, ObjectKey
from engine.reconcile.images import record_tags
from engine.reconcile.watch import DEBOUNCE_SECONDS, replan
from engine.rules.load import load_repo
from engine.store.db import open_store, state_url
from tests.integration.processes import stop_process

SAVES = 20
GOAL_SECONDS = 0.3
LINE_DEADLINE = 30.0
HOMELAB = Path(__file__).resolve().parents[1] / "examples" / "homelab"
DEPLOYMENT = "cluster/apps/podinfo/deployment.yaml"
IMAGE = "ghcr.io/stefanprodan/podinfo:"
CURRENT = "6.5.1"
TAGS = ("6.5.1", "6.5.2", "6.6.0", "7.0.0")
SELECTED = "6.6.0"
BASELINE_NAME = "a bare watchdog observer seeing the same save (event delivery alone), in-process"


class _Watcher:
    """`gitward watch -o json` as a subprocess; its lines arrive on a queue."""

    def __init__(self, repo: Path, database: str, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine", "--state", database, "watch", str(repo), "-o", "json"],
            stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def drain(self) -> None:
        while not self.lines.empty():
            self.lines.get_nowait()

    def next_plan(self, wanted: str) -> dict[str, Any]:
        """The next plan that `wanted` triggered."""
        while True:
            try:
                line = self.lines.get(timeout=LINE_DEADLINE)
            except queue.Empty:
                raise BenchError(f"gitward watch printed no plan within {LINE_DEADLINE:g}s: "
                                 f"{self.log.read_text()[-500:]}") from None
            if not line:
                raise BenchError(f"gitward watch exited ({self.process.poll()}): "
                                 f"{self.log.read_text()[-500:]}")
            report: dict[str, Any] = json.loads(line)
            if wanted in report["trigger"]:
                return report

    def stop(self) -> None:
        stop_process(self.process, grace=10)


class _Seen(FileSystemEventHandler):
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.event = threading.Event()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if self.path in (os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", ""))):
            self.event.set()


def check_plan(report: dict[str, Any], written: str) -> None:
    """The plan a save of `written` must give: clean, and podinfo's update from it."""
    if report["trigger"] != [DEPLOYMENT]:
        raise BenchError(f"the plan was triggered by {report['trigger']}, not [{DEPLOYMENT!r}] alone")
    if not report["ok"]:
        raise BenchError(f"the plan reported errors: {report['errors']}")
    updates = [(u["old"], u["new"]) for u in report["updates"] if u["policy"] == "podinfo/podinfo"]
    if updates != [(IMAGE + written, IMAGE + SELECTED)]:
        raise BenchError(f"the plan proposed {updates}, not {written} -> {SELECTED}")


def _store(repo: Path, database: Path) -> str:
    problems = Problems()
    rules = load_repo(repo, problems).rules
    if problems.errors:
        raise BenchError(f"examples/homelab does not load: {problems.errors[0].render(excerpt=False)}")
    repository = rules.get(ObjectKey(ImageRepository.KIND, "podinfo", "podinfo"))
    if not isinstance(repository, ImageRepository):
        raise BenchError("examples/homelab has no ImageRepository podinfo/podinfo")
    url = state_url(str(database))
    now = datetime.now(UTC)
    with open_store(url) as store:
        record_tags(store, repository, TAGS, started_at=now, finished_at=now)
    return str(database)


def _saver(path: Path) -> Callable[[], tuple[str, Callable[[], None]]]:
    """Alternate the deployment's tag; each call gives the tag and the (timed) save."""
    text = path.read_text()
    if IMAGE + CURRENT not in text:
        raise BenchError(f"{DEPLOYMENT} of examples/homelab no longer runs {IMAGE}{CURRENT}")
    turn = [0]

    def next_save() -> tuple[str, Callable[[], None]]:
        turn[0] += 1
        tag = ("6.5.2", CURRENT)[turn[0] % 2]
        new = text.replace(IMAGE + CURRENT, IMAGE + tag, 1)

        def save() -> None:
            path.write_text(new)

        return tag, save

    return next_save


def run(saves: int, workdir: Path) -> list[Result]:
    """One line: save-to-plan of `gitward watch` against a bare observer's save-to-event."""
    if not HOMELAB.is_dir():
        raise BenchError(f"examples/homelab is missing ({HOMELAB})")
    base = workdir / "watch"
    shutil.rmtree(base, ignore_errors=True)
    repo, bare = base / "homelab", base / "bare"
    shutil.copytree(HOMELAB, repo)
    shutil.copytree(HOMELAB, bare)
    database = _store(repo, base / "state.db")
    watcher = _Watcher(repo, database, base / "watch.err")
    observer = Observer()
    seen = _Seen(bare / DEPLOYMENT)
    observer.schedule(seen, str(bare), recursive=True)
    observer.start()
    try:
        _first_plan(watcher)
        subject_save, baseline_save = _saver(repo / DEPLOYMENT), _saver(bare / DEPLOYMENT)
        checks: list[Callable[[], None]] = []

        def subject() -> Callable[[], object]:
            for check in checks:
                check()
            checks.clear()
            time.sleep(2 * DEBOUNCE_SECONDS)  # untimed: a late plan of the last save is not this one's
            watcher.drain()
            tag, save = subject_save()
            got: list[dict[str, Any]] = []
            checks.append(lambda: check_plan(got[0], tag))

            def timed() -> None:
                save()
                got.append(watcher.next_plan(DEPLOYMENT))

            return timed

        def baseline() -> Callable[[], object]:
            _, save = baseline_save()
            time.sleep(DEBOUNCE_SECONDS)  # untimed: let the previous save's events settle
            seen.event.clear()

            def timed() -> None:
                save()
                if not seen.event.wait(LINE_DEADLINE):
                    raise BenchError(f"watchdog saw no event for {DEPLOYMENT} in {LINE_DEADLINE:g}s")

            return timed

        timing = interleaved(subject, baseline, saves)
        for check in checks:
            check()
        in_process = _in_process(repo, database)
    finally:
        observer.stop()
        observer.join(timeout=5)
        watcher.stop()
    return [Result(
        name="watch save to plan printed", size=1, unit="saves", timing=timing,
        goal=f"< {GOAL_SECONDS * 1000:.0f} ms", met=timing.seconds < GOAL_SECONDS,
        baseline_name=BASELINE_NAME,
        note=(f"median of {saves} saves; debounce {DEBOUNCE_SECONDS * 1000:.0f} ms is part of it; "
              f"one in-process replan (check, plan, render, compare) takes {in_process * 1000:.0f} ms"))]


def _first_plan(watcher: _Watcher) -> None:
    """Wait for the plan the watcher prints on start: it is then watching."""
    try:
        line = watcher.lines.get(timeout=LINE_DEADLINE)
    except queue.Empty:
        raise BenchError(f"gitward watch did not start: {watcher.log.read_text()[-500:]}") from None
    if not line or not json.loads(line)["ok"]:
        raise BenchError(f"gitward watch did not start cleanly: {line or watcher.log.read_text()[-500:]}")


def _in_process(repo: Path, database: str) -> float:
    """Median seconds of `replan` alone on the same copy (5 runs)."""
    times = []
    with open_store(state_url(database), readonly=True) as store:
        for _ in range(5):
            started = time.perf_counter()
            replan(repo, store, datetime.now(UTC))
            times.append(time.perf_counter() - started)
    return statistics.median(times)
