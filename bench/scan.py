"""A scan end to end: listing tags through a paginating registry, then recording them in the store.

- listing: `list_tags` through `PagingProxy` (pages of `page_size`) in front of a real
  docker-registry, against a bare httpx loop that fetches and decodes the same pages with the
  same client through the same proxy. Goal: ratio <= 1.3.
- recording: `record_image_scan` of new tags into a fresh SQLite store, against `executemany`
  of the same rows through `sqlite3` into a copy of the `image_tags` table (same DDL, same
  pragmas). Goal: under 0.3 s per 10,000 tags.
- rescanning: `record_image_scan` of the same tags again, against a `sqlite3` read of the
  repository's tag rows (the least a rescan must do). Goal: O(1) rows written, counted with
  SQLite's total_changes() on every connection the store used, and checked by comparing the
  `image_tags` rows before and after.

The registry is started here, outside pytest, from the test environment's own parts
(tests/integration/registry_env.py); its tags are written straight into its storage layout.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import multiprocessing
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

from bench import BenchError, Result, Timing, interleaved, ready
from bench.policy import make_tags
from engine.model import ListedTag
from engine.observe.registry import list_tags, parse_image
from engine.store.db import BUSY_TIMEOUT_MS, Store, open_store
from engine.store.queries import record_image_scan
from tests.integration.registry_env import (
    PagingProxy,
    RegistryEnvError,
    RunningRegistry,
    start_registry,
    write_tags,
)

SCAN_SIZE = 10_000
SCAN_PAGE = 1_000
QUICK_SCAN_SIZE = 600
QUICK_SCAN_PAGE = 100
SCAN_MAX_RATIO = 1.3
SCAN_RUNS_FACTOR = 3  # a listing takes a fifth of a second and the network makes it noisy: more runs

STORE_SIZE = 10_000
QUICK_STORE_SIZE = 500
STORE_SECONDS_PER_10K = 0.3
RESCAN_MAX_ROWS = 1  # the scan's own row

REPOSITORY = "bench/app"
_STARTED = datetime(2025, 1, 1, tzinfo=UTC)
_COLUMNS = ("repository", "tag", "digest", "first_seen", "last_seen", "gone_at", "excluded")


# Listing -----------------------------------------------------------------------------------------


def run_listing(size: int, page_size: int, runs: int, workdir: Path) -> Result:
    """`list_tags` of `size` tags through the paging proxy, against the bare httpx loop."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise BenchError("docker-registry is not installed (apt-get install docker-registry)")
    tags = make_tags(size).tags
    with _registry_storage(workdir) as storage:
        write_tags(storage, REPOSITORY, tags)
        try:
            registry = start_registry(binary, workdir, storage, name="bench-registry")
        except RegistryEnvError as err:
            raise BenchError(f"the docker-registry could not be started: {err}") from err
        try:
            timing = _time_listing(registry, tags, page_size, runs)
        finally:
            registry.stop()
    return Result(
        name=f"scan list_tags, pages of {page_size}",
        size=size,
        unit="tags",
        timing=timing,
        goal=f"<={SCAN_MAX_RATIO:g}x",
        met=timing.ratio <= SCAN_MAX_RATIO,
        baseline_name="bare httpx loop: GET each page, decode JSON, follow Link (same client, same proxy)",
        note=f"client CPU per listing {timing.cpu * 1000:.1f} ms vs {timing.baseline_cpu * 1000:.1f} ms "
        f"for the bare loop; the rest of the wall time is the proxy and the registry",
    )


@contextmanager
def _registry_storage(workdir: Path) -> Iterator[Path]:
    """Where the registry keeps its tags: tmpfs when there is one, since the benchmark is about
    the client, and one file per tag on a busy disk makes seeding and clean-up slow."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield workdir / "registry"
        return
    with tempfile.TemporaryDirectory(prefix="gitward-bench-registry-", dir=shm) as directory:
        yield Path(directory)


def _time_listing(registry: RunningRegistry, tags: Sequence[str], page_size: int, runs: int) -> Timing:
    size = len(tags)
    with _proxy_process(registry) as host, httpx.Client(timeout=30, trust_env=False) as client:
        image = parse_image(f"{host}/{REPOSITORY}", insecure=True)
        first = f"http://{host}/v2/{REPOSITORY}/tags/list?n={page_size}"

        def gitward() -> tuple[str, ...]:
            return list_tags(image, credentials=None, page_size=page_size, client=client).tags

        def bare() -> list[str]:
            return _bare_listing(client, first)

        expected = set(tags)
        listing = list_tags(image, credentials=None, page_size=page_size, client=client)
        if set(listing.tags) != expected or listing.pages != math.ceil(size / page_size):
            raise BenchError(f"list_tags gave {len(listing.tags)} tags in {listing.pages} pages; expected {size}")
        if set(bare()) != expected:
            raise BenchError("the bare httpx loop did not list the seeded tags")
        return interleaved(ready(gitward), ready(bare), runs * SCAN_RUNS_FACTOR)


@contextmanager
def _proxy_process(registry: RunningRegistry) -> Iterator[str]:
    """A PagingProxy in a child process; its host.

    In this process the proxy's threads would compete with the client being measured for the
    GIL, as no real registry does, and add that noise to both sides of the ratio.
    """
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe()
    process = context.Process(target=_serve_proxy, args=(registry, child), daemon=True)
    process.start()
    try:
        if not parent.poll(10):
            raise BenchError("the paging proxy did not start within 10 s")
        yield str(parent.recv())
    finally:
        parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join()


def _serve_proxy(registry: RunningRegistry, connection: Connection) -> None:
    proxy = PagingProxy(registry)
    connection.send(proxy.host)
    connection.recv()
    proxy.stop()


def _bare_listing(client: httpx.Client, url: str) -> list[str]:
    """The least a lister must do: GET each page, read its tags, follow `Link: <...>; rel="next"`."""
    listed: list[str] = []
    next_url: httpx.URL | None = httpx.URL(url)
    while next_url is not None:
        response = client.get(next_url, headers={"Accept": "application/json"})
        response.raise_for_status()
        listed += response.json()["tags"]
        link = response.headers.get("link")
        next_url = response.url.join(link.split(";", 1)[0].strip()[1:-1]) if link else None
    return listed


# Recording ---------------------------------------------------------------------------------------


def listed_tags(size: int) -> tuple[ListedTag, ...]:
    """`size` tags with a digest each, as a scan that resolved digests would hand them over."""
    return tuple(
        ListedTag(tag, digest="sha256:" + hashlib.sha256(tag.encode()).hexdigest()) for tag in make_tags(size).tags
    )


@dataclass
class _Scratch:
    """Fresh, numbered database file names in a work directory."""

    directory: Path
    count: int = 0

    def path(self, stem: str) -> Path:
        self.count += 1
        return self.directory / f"{stem}-{self.count}.db"


def run_store(size: int, runs: int, workdir: Path) -> list[Result]:
    """Writing `size` new tags into a fresh store, then rescanning them unchanged."""
    listed = listed_tags(size)
    scratch = _Scratch(workdir)
    stores: list[Store] = []
    connections: list[sqlite3.Connection] = []
    rows = _rows(listed)

    def fresh_store() -> Callable[[], object]:
        store = _open(scratch.path("store"), stores)
        return lambda: record_image_scan(store, REPOSITORY, listed, started_at=_STARTED, finished_at=_STARTED)

    def fresh_table() -> Callable[[], object]:
        connection = _sqlite(scratch.path("baseline"))
        connections.append(connection)
        connection.executescript(ddl)

        def insert() -> None:
            with connection:
                connection.executemany(_INSERT, rows)

        return insert

    try:
        ddl = _image_tags_ddl(_open(scratch.path("schema"), stores))
        _check_same_rows(fresh_store, fresh_table, stores, connections)
        write = interleaved(fresh_store, fresh_table, runs)
        store = _open(scratch.path("rescan"), stores)
        _scan(store, listed, 0)
        written, changed = _rescan_writes(store, listed)
        rescan = _time_rescans(store, listed, runs)
    finally:
        for connection in connections:
            connection.close()
        for store in stores:
            store.close()
    limit = STORE_SECONDS_PER_10K * size / STORE_SIZE
    return [
        Result(
            name="store write of new tags",
            size=size,
            unit="tags",
            timing=write,
            goal=f"<{limit:.3g}s",
            met=write.seconds < limit,
            baseline_name="sqlite3 executemany INSERT of the same rows into the same table",
        ),
        Result(
            name="store unchanged rescan",
            size=size,
            unit="tags",
            timing=rescan,
            goal=f"<={RESCAN_MAX_ROWS} row written",
            met=written <= RESCAN_MAX_ROWS and changed == 0,
            baseline_name="sqlite3 SELECT of the repository's tag rows",
            note=f"an unchanged rescan of {size} tags wrote {written} row(s) (SQLite total_changes()); "
            f"image_tags rows changed: {changed}",
        ),
    ]


_INSERT = f"INSERT INTO image_tags ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def _check_same_rows(
    fresh_store: Callable[[], Callable[[], object]],
    fresh_table: Callable[[], Callable[[], object]],
    stores: list[Store],
    connections: list[sqlite3.Connection],
) -> None:
    """Subject and baseline must write identical rows, or the ratio compares different work."""
    fresh_store()()
    fresh_table()()
    with stores[-1].engine.connect() as connection:
        written = sorted(connection.exec_driver_sql(f"SELECT {', '.join(_COLUMNS)} FROM image_tags").all())
    inserted = sorted(connections[-1].execute(f"SELECT {', '.join(_COLUMNS)} FROM image_tags").fetchall())
    if [tuple(row) for row in written] != inserted:
        raise BenchError("record_image_scan and the sqlite3 baseline wrote different image_tags rows")


def _time_rescans(store: Store, listed: Sequence[ListedTag], runs: int) -> Timing:
    database = store.engine.url.database
    assert database is not None
    counter = itertools.count(2)  # scans 0 and 1 came before

    def rescan() -> None:
        _scan(store, listed, next(counter))

    def read() -> None:
        connection = _sqlite(Path(database))
        try:
            connection.execute(
                "SELECT id, tag, digest, excluded, gone_at FROM image_tags WHERE repository = ?", (REPOSITORY,)
            ).fetchall()
        finally:
            connection.close()

    return interleaved(ready(rescan), ready(read), runs)


def _scan(store: Store, listed: Sequence[ListedTag], number: int) -> None:
    at = _STARTED + timedelta(minutes=5 * number)
    record_image_scan(store, REPOSITORY, listed, started_at=at, finished_at=at)


def _rescan_writes(store: Store, listed: Sequence[ListedTag]) -> tuple[int, int]:
    """Rows one unchanged rescan wrote (total_changes over every connection it used), and the
    `image_tags` rows whose values differ afterwards."""
    before = _tag_rows(store)
    with _counting_changes(store) as written:
        _scan(store, listed, 1)
    after = _tag_rows(store)
    changed = len(set(after.items()) - set(before.items()))
    return written[0], changed


@contextmanager
def _counting_changes(store: Store) -> Iterator[list[int]]:
    """`[n]`: rows inserted, updated or deleted on the store's connections inside the block.

    Each connection's sqlite3 `total_changes` is read when the pool hands it out and when it
    comes back, so the count holds whichever pooled connection the writer gets.
    """
    count = [0]
    at_checkout: dict[int, int] = {}

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        at_checkout[id(dbapi_connection)] = dbapi_connection.total_changes

    def checkin(dbapi_connection: Any, record: Any) -> None:
        start = at_checkout.pop(id(dbapi_connection), None)
        if start is not None:
            count[0] += dbapi_connection.total_changes - start

    event.listen(store.engine, "checkout", checkout)
    event.listen(store.engine, "checkin", checkin)
    try:
        yield count
    finally:
        event.remove(store.engine, "checkout", checkout)
        event.remove(store.engine, "checkin", checkin)
    if at_checkout:
        raise BenchError("a store connection was still checked out after the rescan; the count is incomplete")


def _tag_rows(store: Store) -> dict[int, tuple[Any, ...]]:
    with store.engine.connect() as connection:
        result = connection.exec_driver_sql(f"SELECT id, {', '.join(_COLUMNS)} FROM image_tags")
        return {row[0]: tuple(row[1:]) for row in result}


def _open(path: Path, stores: list[Store]) -> Store:
    store = open_store(f"sqlite:///{path}")
    stores.append(store)
    return store


def _image_tags_ddl(store: Store) -> str:
    """The `image_tags` table and its indexes exactly as the migrations created them in `store`."""
    with store.engine.connect() as connection:
        statements = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'image_tags' AND sql IS NOT NULL ORDER BY type DESC"
        ).scalars()
        ddl = ";\n".join(statements) + ";"
    if "CREATE TABLE" not in ddl:
        raise BenchError("the migrated store has no image_tags table")
    return ddl


def _sqlite(path: Path) -> sqlite3.Connection:
    """A sqlite3 connection with the pragmas engine/store/db.py sets on every store connection."""
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA journal_mode = WAL")
    return connection


def _rows(listed: Sequence[ListedTag]) -> list[tuple[object, ...]]:
    """The rows record_image_scan writes, in the text form UtcDateTime stores on SQLite."""
    seen = _STARTED.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return [(REPOSITORY, item.tag, item.digest, seen, seen, None, int(item.excluded)) for item in listed]


@contextmanager
def workspace() -> Iterator[Path]:
    """A scratch directory for registries and databases, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="gitward-bench-") as directory:
        yield Path(directory)
