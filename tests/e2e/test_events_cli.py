"""`gitward events` and `gitward logs` on real SQLite stores: filters, formats, following, errors."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.cli import cli, main
from engine.cli.events import events, logs
from engine.store import queries
from engine.store.db import open_store
from engine.store.queries import Event, EventSeverity
from tests.conftest import ROOT

# The lead registers the commands in engine/cli/__init__.py; adding them again is a no-op.
cli.add_command(events)
cli.add_command(logs)

RUN_CLI = ("import sys\n"
           "from engine.cli import cli, main\n"
           "from engine.cli.events import events\n"
           "cli.add_command(events)\n"
           "sys.exit(main(sys.argv[1:]))\n")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def example(tmp_path: Path) -> str:
    target = tmp_path / "state.db"
    shutil.copy(ROOT / "state.db.example", target)
    return str(target)


def _record(path: str, event: Event) -> None:
    with open_store(f"sqlite:///{path}") as store:
        queries.record_event(store, event)


def test_events_table_lists_every_event_newest_last(example: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--state", example, "events")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "SEVERITY", "OBJECT", "REASON"]
    assert lines[1] == "    MESSAGE"  # too long beside the others: each goes under its row
    rows = [line for line in lines if line[:4] == "2025"]
    times = [row.split()[0] for row in rows]
    assert len(rows) == 23 and times == sorted(times)
    assert times[0] == "2025-11-03T12:00:00Z" and times[-1] == "2025-11-05T17:16:00Z"
    assert all(row.split()[1] == "info" for row in rows)
    assert "NewRevision" in rows[0] and "ReconciliationSucceeded" in rows[-1]
    assert lines[3].startswith("    fetched revision main@sha1:e09d44480d821d567c058d1b3e099b9c247e33e6: ")
    assert {row.split()[3] for row in rows} >= {"NewTags", "NewSelection", "CommitPushed"}
    assert all(len(line) <= 100 for line in lines)


def test_events_for_one_object_in_json_lines(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--state", example, "events", "--for",
                       "gitrepository/flux-system/flux-system", "-o", "json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 5 and {row["reason"] for row in rows} == {"NewRevision"}
    assert rows[2] | {"id": 0} == {
        "id": 0, "time": "2025-11-04T18:01:00+00:00", "object_kind": "GitRepository",
        "object_name": "flux-system/flux-system", "severity": "info", "reason": "NewRevision",
        "message": "fetched revision main@sha1:a44e4d3d84351d0749a75d6803b21460b96b1937: "
                   "'Remove ledger-config: the settings are in the Deployment'"}
    code, out, _ = run(capsys, "--state", example, "events", "--for", "Kustomization/flux-system",
                       "-o", "json")
    assert code == 0 and [json.loads(line)["reason"] for line in out.splitlines()] == [
        "ReconciliationSucceeded"] * 5


def test_since_keeps_only_recent_events(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    _record(example, Event(now - timedelta(minutes=5), "Kustomization", "flux-system/apps",
                           EventSeverity.ERROR, "HealthCheckFailed", "Deployment/apps/web not ready"))
    code, out, _ = run(capsys, "--state", example, "events", "--since", "1h", "-o", "json")
    assert code == 0 and [json.loads(line)["reason"] for line in out.splitlines()] == ["HealthCheckFailed"]
    code, out, err = run(capsys, "--state", example, "events", "--since", "1m")
    assert code == 0 and out == "" and "no events" in err


def test_logs_print_one_entry_per_event(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--state", example, "logs")
    assert code == 0
    # A message keeps its own lines (the first apply lists every object it created), indented.
    starts = [line for line in out.splitlines() if line[:4] == "2025"]
    assert len(starts) == 23
    rest = [line for line in out.splitlines() if line[:4] != "2025"]
    assert rest and all(line.startswith("  ") and line.strip() for line in rest)
    assert starts[12] == ("2025-11-04T18:01:00Z info Kustomization/flux-system/flux-system "
                         "ReconciliationSucceeded: revision "
                         "main@sha1:a44e4d3d84351d0749a75d6803b21460b96b1937: "
                         "ConfigMap/ledger/ledger-config deleted")
    code, out, _ = run(capsys, "--state", example, "logs", "-o", "json")
    kinds = [json.loads(line)["object_kind"] for line in out.splitlines()]
    assert len(kinds) == 23 and kinds.count("GitRepository") == kinds.count("Kustomization") == 5
    assert kinds.count("ImageUpdateAutomation") == 3


def test_reading_events_never_writes_the_store(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = Path(example).read_bytes()
    assert run(capsys, "--state", example, "events")[0] == 0
    assert run(capsys, "--state", example, "logs")[0] == 0
    assert Path(example).read_bytes() == before


def test_without_a_store_there_is_nothing_to_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "none.db")
    code, out, err = run(capsys, "--state", missing, "events")
    assert (code, out) == (0, "") and "no events" in err
    code, _, err = run(capsys, "--state", missing, "events", "-w")
    assert code == 2 and "no state store yet" in err
    assert not Path(missing).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--for", "Kustomisation/flux-system/apps"], 'unknown kind \'Kustomisation\' (did you mean "Kustomization"?)'),
        (["--for", "Kustomization"], "expected KIND/NAMESPACE/NAME or KIND/NAME"),
        (["--for", "Kustomization/a/b/c"], "expected KIND/NAMESPACE/NAME or KIND/NAME"),
        (["--since", "1 hour"], '--since: invalid age "1 hour"'),
        (["-o", "yaml"], "Invalid value for '-o'"),
    ],
)
def test_bad_arguments_are_clear_user_errors(args: list[str], message: str, example: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--state", example, "events", *args)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_watch_prints_new_events_until_interrupted(example: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "--state", example, "events", "-w", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    try:
        seen = _read_lines(process, 23)
        assert [json.loads(line)["reason"] for line in seen][-1] == "ReconciliationSucceeded"
        _record(example, Event(datetime(2025, 11, 5, 17, 5, tzinfo=UTC), "ImagePolicy", "ledger/ledger",
                               EventSeverity.WARNING, "Held", "20251105-1650 held for 10m"))
        [fresh] = _read_lines(process, 1)
        assert json.loads(fresh)["reason"] == "Held"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _read_lines(process: subprocess.Popen[str], count: int, deadline_s: float = 30) -> list[str]:
    """`count` lines from the child's stdout; the deadline only stops a broken run from hanging."""
    assert process.stdout is not None
    lines: list[str] = []
    for _ in range(count):
        try:
            line = _lines_of(process).get(timeout=deadline_s)
        except queue.Empty:
            pytest.fail(f"expected {count} lines from `events -w`, got {lines!r}")
        if line is None:
            pytest.fail(f"`events -w` exited early: {process.stderr.read() if process.stderr else ''}")
        lines.append(line)
    return lines


_READERS: dict[int, queue.Queue[str | None]] = {}


def _lines_of(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """A queue fed by a thread reading the child's stdout (None at end of file)."""
    if process.pid not in _READERS:
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        _READERS[process.pid] = lines
    return _READERS[process.pid]
