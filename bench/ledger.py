"""The ledger: what an interval adds to the store, and how fast its latest rows are read.

- unchanged interval: REPOSITORIES repositories of TAGS tags each get a first interval, then
  two intervals that find the same tags, each made as `gitward images import` records tags
  (`record_tags`) and `gitward run` then decides (`decide_policy`). The line reports the bytes
  the store's pages grew by per repository per unchanged interval (goal <= 2 KiB); its baseline
  is one `sqlite3` UPDATE of a row per repository, the least an interval that says "seen again"
  can write. The time of an unchanged interval is the second line, against evaluating the
  policies alone (the floor of deciding).
- unchanged held interval: the same, with every repository's update held back by a gate (git
  deploys 0.9.0 and the images' ages are unknown: a possible rollback), each interval also
  planning the automation (`plan_checkout`, recording the gate) as `gitward run` does. The
  selection and the gate that holds it are counted in their rows: the goal is the same.
- year: how a year of YEAR_REPOSITORIES repositories looks, at 5-minute intervals with
  NEW_PER_DAY new tags a day. Every change interval of one repository's year (each new tag in an
  interval of its own, the worst case) runs through the store's functions, and after each day one
  unchanged interval does too (the bench checks it adds no page); the other unchanged intervals
  of the day are not run, since each is that same in-place update (288 a day is 105,120 a year per
  repository: hours of Python). The other repositories are that repository's rows copied with
  their names (and trace digests) changed, so every repository's rows are as the store wrote
  them and none shares a trace with another. Reported: the store's size (goal <= 200 MB) and the
  time of every view, `explain` and `images tags` in process, with no trace decoded beforehand
  (goal <= 100 ms each; start-up comes on top and is the startup benchmark's), each against reading one row by primary key with
  `sqlite3`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from bench import BenchError, Result, Timing, interleaved, ready
from engine.cli import cli as cli_main
from engine.errors import Problems
from engine.evaluate.policy import evaluate_policy
from engine.model import ImagePolicy, ImageRepository, RuleSet
from engine.reconcile.images import decide_policy, record_tags
from engine.reconcile.repo import read_marked_tree
from engine.reconcile.updates import plan_checkout
from engine.rules.load import load_repo
from engine.store.db import Store, open_store
from engine.store.traces import forget_decoded

REPOSITORIES, TAGS = 20, 1_000
QUICK_REPOSITORIES, QUICK_TAGS = 3, 100
YEAR_REPOSITORIES, YEAR_DAYS, NEW_PER_DAY = 50, 365, 3
QUICK_YEAR_REPOSITORIES, QUICK_YEAR_DAYS = 3, 10
INTERVAL = timedelta(minutes=5)
KIB, MB = "KiB", "MB"
UNCHANGED_GOAL_BYTES = 2 * 1024
YEAR_GOAL_BYTES = 200 * 1000 * 1000
READ_GOAL_SECONDS = 0.1
NAMESPACE = "apps"
_START = datetime(2026, 1, 1, tzinfo=UTC)
VIEWS = ("v_policy_latest", "v_image_updates", "v_object_history", "v_tag_lead_time")


@dataclass(frozen=True)
class Fleet:
    """A repository of rules for `count` image repositories, each with one semver policy."""

    root: Path
    rules: RuleSet

    @staticmethod
    def write(root: Path, count: int, *, held: bool = False) -> Fleet:
        """`held`: with an automation whose every update a gate holds back (git deploys 0.9.0
        of each image, whose age against the selected one's is unknown: a possible rollback)."""
        parts = []
        for i in range(count):
            parts.append(f'image repository {NAMESPACE}/app{i} {{\n'
                         f'  image "registry.example.com/app{i}"\n  interval 5m\n}}\n')
            parts.append(f'image policy {NAMESPACE}/app{i} {{\n  repository app{i}\n'
                         f'  select highest semver ">=1.0.0"\n}}\n')
        (root / "cluster").mkdir(parents=True, exist_ok=True)
        (root / "cluster" / "images.rules").write_text("\n".join(parts), encoding="utf-8")
        if held:
            (root / "cluster" / "update.rules").write_text(_HELD_UPDATE, encoding="utf-8")
            (root / "cluster" / "deployments.yaml").write_text("".join(
                f'app{i}:\n  image: registry.example.com/app{i}:0.9.0 '
                f'# {{"$imagepolicy": "{NAMESPACE}:app{i}"}}\n' for i in range(count)),
                encoding="utf-8")
        problems = Problems()
        rules = load_repo(root, problems).rules
        if len(rules.image_policies) != count:
            raise BenchError(f"the bench's rules gave {len(rules.image_policies)} policies, not {count}")
        return Fleet(root, rules)

    def pairs(self) -> list[tuple[ImageRepository, ImagePolicy]]:
        by_key = {r.key: r for r in self.rules.image_repositories}
        return [(by_key[p.repository_key], p) for p in self.rules.image_policies]


_HELD_UPDATE = f"""\
source git flux-system/flux-system {{
  url "ssh://git@example.com/org/fleet"
}}

image update {NAMESPACE}/fleet {{
  source git flux-system/flux-system
  interval 5m
  checkout branch "main"
  author "bench <bench@example.com>"
  message "update images"
  push "main"
}}
"""


def make_tags(count: int) -> list[str]:
    """`count` semver tags and one cosign `.sig` tag for every tenth (excluded by default)."""
    tags = [f"1.{n // 100}.{n % 100}" for n in range(count)]
    return tags + [f"sha256-{n:04x}.sig" for n in range(0, count, 10)]


def _used_bytes(path: Path) -> int:
    """Bytes of the database's pages in use (WAL checkpointed first; free pages not counted)."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages * db.execute("PRAGMA page_size").fetchone()[0])
    finally:
        db.close()


def interval(store: Store, fleet: Fleet, tags: dict[str, list[str]], at: datetime) -> None:
    """One interval of every repository: record its listing, then decide its policy; with an
    automation, plan it as `gitward run` does (recording the gates that hold its updates)."""
    for repository, policy in fleet.pairs():
        record_tags(store, repository, tags[repository.key.ref], started_at=at, finished_at=at)
        decide_policy(store, fleet.rules, policy, now=at)
    if fleet.rules.image_updates:
        planned = plan_checkout(read_marked_tree(fleet.root, fleet.rules), fleet.rules, store, at,
                                record=True, reuse=True)
        if len(planned.plan.gates) != len(fleet.rules.image_policies) or planned.plan.actions:
            raise BenchError(f"the held fleet planned {len(planned.plan.actions)} commits and "
                             f"{len(planned.plan.gates)} gates, not every update held")


def run_unchanged(repositories: int, tags: int, runs: int, workdir: Path, *,
                  held: bool = False) -> list[Result]:
    kind = "unchanged held" if held else "unchanged"
    root = workdir / f"ledger-{kind.replace(' ', '-')}-{repositories}x{tags}"
    fleet = Fleet.write(root / "repo", repositories, held=held)
    path = root / "state.db"
    listing = {r.key.ref: make_tags(tags) for r, _ in fleet.pairs()}
    with open_store(f"sqlite:///{path}") as store:
        interval(store, fleet, listing, _START)
        before = _used_bytes(path)
        added = []
        for step in (1, 2):
            interval(store, fleet, listing, _START + step * INTERVAL)
            after = _used_bytes(path)
            added.append((after - before) / repositories)
            before = after
        per_repository = max(added)
        clock = iter(_START + (3 + n) * INTERVAL for n in range(10 * (runs + 1)))

        def unchanged() -> None:
            interval(store, fleet, listing, next(clock))

        def evaluate_only() -> None:
            for repository, policy in fleet.pairs():
                evaluate_policy(policy, repository, listing[repository.key.ref])

        timing = interleaved(ready(unchanged), ready(evaluate_only), runs)
    floor = _update_floor(root / "floor.db", repositories)
    size = repositories * tags
    return [
        Result(f"ledger {kind} interval, {repositories}x{tags}", size, KIB,
               Timing(per_repository / 1024, floor / 1024, 2), "<= 2 KiB/repository",
               per_repository <= UNCHANGED_GOAL_BYTES,
               "sqlite3: one UPDATE of a row per repository (bytes, same measure)",
               note=f"bytes added per repository by each unchanged interval: "
                    f"{', '.join(f'{b:,.0f}' for b in added)}"),
        Result(f"ledger {kind} interval time, {repositories}x{tags}", size, "tags", timing,
               "measured", True, "evaluate_policy of every policy on the same tags (no store)"),
    ]


def _update_floor(path: Path, repositories: int) -> float:
    """Bytes per repository that one in-place UPDATE per repository adds (0 once pages exist)."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE seen (repository TEXT PRIMARY KEY, at TEXT, runs INTEGER)")
    db.executemany("INSERT INTO seen VALUES (?, ?, 1)", [(f"r{i}", "t0") for i in range(repositories)])
    db.commit()
    db.close()
    before = _used_bytes(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE seen SET at = 't1', runs = runs + 1")
    db.commit()
    db.close()
    return (_used_bytes(path) - before) / repositories


def _year_of_one(store: Store, path: Path, fleet: Fleet, tags: int, days: int) -> list[int]:
    """One repository's year through the store's functions; the bytes each day's unchanged
    interval added (expected 0: it updates rows in place)."""
    [(repository, policy)] = fleet.pairs()
    ref = repository.key.ref
    listing = {ref: make_tags(tags)}
    interval(store, fleet, listing, _START)
    unchanged_added = []
    version = tags
    for day in range(days):
        at = _START + timedelta(days=day)
        for change in range(NEW_PER_DAY):
            listing[ref] = [*listing[ref], f"1.{version // 100}.{version % 100}"]
            version += 1
            interval(store, fleet, listing, at + (1 + change) * INTERVAL)
        before = _used_bytes(path)
        interval(store, fleet, listing, at + (1 + NEW_PER_DAY) * INTERVAL)
        unchanged_added.append(_used_bytes(path) - before)
    return unchanged_added


def _copy_repository(path: Path, copies: int) -> None:
    """Copy every row of `apps/app0` as `apps/app<n>` for n in 1..copies, trace digests (and
    the bases they name) changed per copy so that no copy shares a trace with another."""
    source = f"{NAMESPACE}/app0"
    renamed = "substr({column}, 1, 56) || printf('%08d', :n)"
    db = sqlite3.connect(path)
    with db:
        db.execute("CREATE TEMP TABLE original_traces AS SELECT * FROM decision_traces")
        scans = db.execute("SELECT max(id) FROM image_scans").fetchone()[0]
        for n in range(1, copies + 1):
            values = {"n": n, "name": f"{NAMESPACE}/app{n}", "source": source, "offset": n * scans}
            db.execute("INSERT INTO decision_traces (digest, base, depth, tags, trace) "
                       f"SELECT {renamed.format(column='digest')}, "
                       f"CASE WHEN base IS NULL THEN NULL ELSE {renamed.format(column='base')} END, "
                       "depth, tags, trace FROM original_traces", values)
            db.execute("INSERT INTO image_scans (id, repository, started_at, finished_at, status, "
                       "tag_count, error, since, runs) SELECT id + :offset, :name, started_at, "
                       "finished_at, status, tag_count, error, since, runs FROM image_scans "
                       "WHERE repository = :source", values)
            db.execute("INSERT INTO image_tags (repository, tag, digest, first_seen, last_seen, "
                       "gone_at, excluded) SELECT :name, tag, digest, first_seen, last_seen, "
                       "gone_at, excluded FROM image_tags WHERE repository = :source", values)
            db.execute("INSERT INTO policy_decisions (policy, scan_id, selected_tag, previous_tag, "
                       "candidates, verdict_counts, error, decided_at, trace_digest, since, runs) "
                       "SELECT :name, scan_id + :offset, selected_tag, previous_tag, candidates, "
                       f"verdict_counts, error, decided_at, {renamed.format(column='trace_digest')}, "
                       "since, runs FROM policy_decisions WHERE policy = :source", values)
            db.execute("INSERT INTO events (time, object_kind, object_name, severity, reason, "
                       "message) SELECT time, object_kind, :name, severity, reason, message "
                       "FROM events WHERE object_name = :source", values)
        db.execute("DROP TABLE original_traces")
    db.execute("VACUUM")
    db.close()


def year_store(repositories: int, tags: int, days: int, workdir: Path) -> tuple[Path, Fleet]:
    """The simulated year's SQLite store and its rules, built once per workspace (the ui
    benchmark reads the same store)."""
    root = workdir / f"ledger-year-{repositories}x{tags}x{days}"
    path = root / "state.db"
    built = root / "built"
    if not built.exists():
        one = Fleet.write(root / "one", 1)
        with open_store(f"sqlite:///{path}") as store:
            unchanged_added = _year_of_one(store, path, one, tags, days)
        if any(unchanged_added):
            raise BenchError(f"an unchanged interval of the year added pages: {unchanged_added}")
        _copy_repository(path, repositories - 1)
        built.touch()
    return path, Fleet.write(root / "fleet", repositories)


def run_year(repositories: int, tags: int, days: int, runs: int, workdir: Path) -> list[Result]:
    path, fleet = year_store(repositories, tags, days, workdir)
    size = path.stat().st_size
    results = [Result(
        f"ledger year, {repositories}x{tags}, {days} days", repositories, MB,
        Timing(size / 1e6, 0.0, 1), "<= 200 MB", size <= YEAR_GOAL_BYTES * days / YEAR_DAYS,
        "none (a size)",
        note=(f"{days * NEW_PER_DAY} change intervals of one repository through record_tags + "
              f"decide_policy, one unchanged interval a day run too (0 bytes each); copied to "
              f"{repositories} repositories; goal scaled to {days} days"))]
    results += _reads(path, fleet, runs)
    return results


def _reads(path: Path, fleet: Fleet, runs: int) -> list[Result]:
    url = f"sqlite:///{path}"
    policy = f"{NAMESPACE}/app0"

    def floor() -> None:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.execute("SELECT * FROM policy_decisions WHERE id = 1").fetchall()
        db.close()

    def view(name: str) -> None:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.execute(f"SELECT * FROM {name}").fetchall()
        db.close()

    def command(*args: str) -> None:
        forget_decoded()  # as a fresh `gitward` process: no trace decoded yet
        result = CliRunner().invoke(cli_main, ["--state", url, *args], catch_exceptions=False)
        if result.exit_code != 0:
            raise BenchError(f"gitward {' '.join(args)} failed: {result.output}")

    subjects = {f"read {name}": (lambda n=name: view(n)) for name in VIEWS}
    subjects["read explain"] = lambda: command("explain", "image", "policy", policy,
                                               "--repo", str(fleet.root), "-o", "json")
    subjects["read images tags"] = lambda: command("images", "tags", policy, "-o", "json")
    results = []
    for name, work in subjects.items():
        timing = interleaved(ready(work), ready(floor), runs)
        results.append(Result(f"ledger {name}", 1, "reads", timing, "<= 100 ms",
                              timing.seconds <= READ_GOAL_SECONDS,
                              "sqlite3: one policy_decisions row by primary key"))
    return results


def run(quick: bool, runs: int, workdir: Path) -> list[Result]:
    if quick:
        return [*run_unchanged(QUICK_REPOSITORIES, QUICK_TAGS, runs, workdir),
                *run_unchanged(QUICK_REPOSITORIES, QUICK_TAGS, runs, workdir, held=True),
                *run_year(QUICK_YEAR_REPOSITORIES, QUICK_TAGS, QUICK_YEAR_DAYS, runs, workdir)]
    return [*run_unchanged(REPOSITORIES, TAGS, runs, workdir),
            *run_unchanged(REPOSITORIES, TAGS, runs, workdir, held=True),
            *run_year(YEAR_REPOSITORIES, TAGS, YEAR_DAYS, runs, workdir)]
