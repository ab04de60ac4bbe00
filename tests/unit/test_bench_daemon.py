"""The daemon benchmark: simulated time moves only through the loop's waits, and a `--quick` run
prints its two memory lines with what the daemon did. No memory size or timing is asserted."""

from __future__ import annotations

import os
import re
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench import BenchError, Result, Timing, daemon
from bench.run import format_table, main
from tests.conftest import require

_LINE = re.compile(
    r"^(?P<name>daemon VmRSS .+?)\s{2,}(?P<size>[\d,]+)\s+1\s+(?P<rss>\d+\.\d) MiB\s+-\s+"
    r"(?P<baseline>\d+\.\d) MiB\s+(?P<ratio>\d+\.\d{2})x\s+none: measured\s+met$"
)


def _lines(out: str) -> dict[str, re.Match[str]]:
    return {m["name"]: m for line in out.splitlines() if (m := _LINE.match(line))}


def test_a_wait_advances_the_clock_and_returns_at_once() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    clock = daemon.SimulatedClock(start)
    advances: list[tuple[float, float]] = []
    stop = daemon.SimulatedStop(clock, 90.0, lambda before, after: advances.append((before, after)))
    assert stop.wait(30) is False
    assert clock() == start + timedelta(seconds=30)
    assert stop.wait(0) is False and clock.elapsed == 30
    assert stop.wait(100) is True  # past the end: stops there, and sets itself
    assert clock() == start + timedelta(seconds=90) and stop.is_set()
    assert advances == [(0, 30), (30, 30), (30, 90)]
    assert stop.wait(10) is True and clock.elapsed == 90  # once set, time stands still


def test_a_wait_without_timeout_runs_to_the_end() -> None:
    clock = daemon.SimulatedClock(datetime(2025, 1, 1, tzinfo=UTC))
    stop = daemon.SimulatedStop(clock, 600.0, lambda before, after: None)
    assert stop.wait() is True and clock.elapsed == 600


def test_waits_of_other_threads_do_not_move_the_clock() -> None:
    clock = daemon.SimulatedClock(datetime(2025, 1, 1, tzinfo=UTC))
    stop = daemon.SimulatedStop(clock, 600.0, lambda before, after: None)
    answers: list[bool] = []
    helper = threading.Thread(target=lambda: answers.append(stop.wait(0.01)))
    helper.start()
    helper.join()
    assert answers == [False] and clock.elapsed == 0
    stop.set()
    helper = threading.Thread(target=lambda: answers.append(stop.wait(5)))
    helper.start()
    helper.join()
    assert answers == [False, True]


def test_vm_rss_is_read_from_proc_status() -> None:
    assert daemon.vm_rss_kib("Name:\tpython\nVmPeak:\t  200 kB\nVmRSS:\t   96376 kB\n") == 96376
    assert daemon.vm_rss_kib(Path("/proc/self/status").read_text()) > 0
    with pytest.raises(BenchError, match="no VmRSS"):
        daemon.vm_rss_kib("Name:\tpython\n")


def test_seeded_tags_leave_the_deployed_ones_newest() -> None:
    podinfo = daemon.podinfo_tags()
    in_range = [t for t in podinfo if re.fullmatch(r"6\.\d+\.\d+", t)]
    assert max(in_range, key=lambda t: tuple(int(n) for n in t.split("."))) == daemon.PODINFO_TAG
    assert daemon.PODINFO_PUSHED not in podinfo and daemon.LEDGER_PUSHED not in daemon.ledger_tags()
    builds = [t for t in daemon.ledger_tags() if re.fullmatch(r"[0-9]{8}-[0-9]{4}-sha-[a-f0-9]{7}", t)]
    assert max(builds) == daemon.LEDGER_TAG < daemon.LEDGER_PUSHED
    assert len(set(daemon.ledger_tags())) == len(daemon.ledger_tags())


def test_memory_lines_show_mib_and_no_rate() -> None:
    line = Result("daemon VmRSS after first pass", 6, daemon.MIB, Timing(105.94, 94.5, 1),
                  "none: measured", True, "a fresh interpreter")
    match = _lines(format_table([line]))["daemon VmRSS after first pass"]
    assert (match["rss"], match["baseline"], match["ratio"]) == ("105.9", "94.5", "1.12")


def test_quick_run_prints_both_lines_and_what_the_daemon_did(capsys: pytest.CaptureFixture[str]) -> None:
    require(shutil.which("git") is not None, "git is not installed (apt-get install git)")
    status = main(["--quick", "--runs", "1", "--only", "daemon"])
    out, err = capsys.readouterr()
    assert status == 0, err
    lines = _lines(out)
    end = f"daemon VmRSS after {daemon.QUICK_MINUTES} simulated min"
    assert sorted(lines) == sorted(["daemon VmRSS after first pass", end]), out
    assert int(lines[end]["size"]) > int(lines["daemon VmRSS after first pass"]["size"]) > 0
    note = out.split(f"  {end}: ", 2)[2]
    assert re.search(r"growth since first pass [+-]\d+\.\d MiB", note), note
    assert f"GitRepository {daemon.QUICK_MINUTES}" in note  # fetched every simulated minute
    if shutil.which("docker-registry"):
        assert "commits pushed: Update podinfo image" in note
    else:
        assert "left out: image repositories and automations" in note


def test_without_registry_or_cluster_the_run_says_what_it_left_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    git = shutil.which("git")
    require(git is not None, "git is not installed (apt-get install git)")
    assert git is not None
    path = tmp_path / "bin"  # git alone on PATH: no docker-registry
    path.mkdir()
    os.symlink(git, path / "git")
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.setenv("GITWARD_KUBE_BIN_DIR", str(tmp_path))  # no kube-apiserver in it
    assert main(["--quick", "--runs", "1", "--only", "daemon"]) == 0
    out = capsys.readouterr().out
    assert len(_lines(out)) == 2, out
    assert "no commits (image repositories and automations suspended)" in out
    assert re.search(r"left out: image repositories and automations \(docker-registry is not "
                     r"installed\); Kustomizations \(no kube-apiserver", out), out
    assert f"reconciles: GitRepository {daemon.QUICK_MINUTES};" in out
