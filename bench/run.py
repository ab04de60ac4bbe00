"""Run the benchmarks and print one table: `python -m bench.run [--quick] [--only NAME]`.

Every line is a median of interleaved runs of the subject and its baseline, measured in this
process on the same data. Missed goals are reported, not failed: a benchmark is not a test. The
exit status is 1 only when a benchmark could not run or its subject gave a wrong answer.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import BenchError, Result, daemon, discovery, fleet, ledger, markers, policy, scan, startup, sync, ui, watch

BENCHMARKS = (
    "policy", "scan", "store", "ledger", "ui", "markers", "sync", "watch", "daemon", "discovery", "startup",
    "fleet",
)
FULL_RUNS = 5
QUICK_RUNS = 3
_COLUMNS = ("benchmark", "size", "runs", "median s", "rate", "baseline s", "ratio", "goal", "verdict")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the benchmarks run, measures little")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--runs", type=int, help=f"timed runs per line (default {FULL_RUNS}, {QUICK_RUNS} with --quick)")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of each policy evaluation (and of the marker update with "
                        "markers, of a no-op reconcile with sync)")
    return parser


def _plan(quick: bool, runs: int, workdir: Path) -> dict[str, Callable[[], list[Result]]]:
    policy_size = policy.QUICK_SIZE if quick else policy.FULL_SIZE
    scan_size, page = (scan.QUICK_SCAN_SIZE, scan.QUICK_SCAN_PAGE) if quick else (scan.SCAN_SIZE, scan.SCAN_PAGE)
    store_size = scan.QUICK_STORE_SIZE if quick else scan.STORE_SIZE
    files, marked = _marker_sizes(quick)
    namespaces, objects = _sync_sizes(quick)
    return {
        "policy": lambda: [*policy.run(policy_size, runs), policy.run_images_test(policy_size, runs, workdir)],
        "scan": lambda: [scan.run_listing(scan_size, page, runs, workdir)],
        "store": lambda: scan.run_store(store_size, runs, workdir),
        "ledger": lambda: ledger.run(quick, runs, workdir),
        "ui": lambda: ui.run(quick, runs, workdir),
        "markers": lambda: markers.run(files, marked, runs, workdir),
        "sync": lambda: sync.run(namespaces, objects, runs, workdir),
        "watch": lambda: watch.run(runs if quick else max(runs, watch.SAVES), workdir),
        "daemon": lambda: daemon.run(*_daemon_minutes(quick), runs, workdir),
        "discovery": lambda: discovery.run(
            discovery.QUICK_REPOSITORY if quick else discovery.FULL_REPOSITORY, runs),
        "startup": lambda: startup.run(runs if quick else runs * startup.RUNS_FACTOR, workdir),
        "fleet": lambda: fleet.run(*_fleet_size(quick), runs, workdir),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    runs = args.runs if args.runs is not None else (QUICK_RUNS if args.quick else FULL_RUNS)
    if runs < 1:
        print(f"--runs must be at least 1, not {runs}", file=sys.stderr)
        return 2
    chosen = args.only or list(BENCHMARKS)
    print(_header(args.quick, runs))
    results: list[Result] = []
    failures: list[str] = []
    with scan.workspace() as workdir:
        plan = _plan(args.quick, runs, workdir)
        for name in BENCHMARKS:
            if name not in chosen:
                continue
            try:
                results += plan[name]()
            except BenchError as err:
                failures.append(f"{name}: {err}")
    print(format_table(results))
    for failure in failures:
        print(f"not run: {failure}", file=sys.stderr)
    if args.profile:
        print(policy.profile(policy.QUICK_SIZE if args.quick else policy.FULL_SIZE))
        if "markers" in chosen:
            try:
                print(markers.profile(*_marker_sizes(args.quick)))
            except BenchError as err:
                failures.append(f"markers profile: {err}")
                print(f"not run: markers profile: {err}", file=sys.stderr)
        if "sync" in chosen:
            try:
                print(sync.profile(*_sync_sizes(args.quick)))
            except BenchError as err:
                failures.append(f"sync profile: {err}")
                print(f"not run: sync profile: {err}", file=sys.stderr)
    return 1 if failures else 0


def _marker_sizes(quick: bool) -> tuple[int, int]:
    """(manifests, marked files) of the marker benchmark's tree."""
    return (markers.QUICK_FILES, markers.QUICK_MARKED) if quick else (markers.FULL_FILES, markers.FULL_MARKED)


def _sync_sizes(quick: bool) -> tuple[int, int]:
    """(namespaces, objects in them) of the sync benchmark's tree."""
    return (sync.QUICK_NAMESPACES, sync.QUICK_OBJECTS) if quick else (sync.FULL_NAMESPACES, sync.FULL_OBJECTS)


def _fleet_size(quick: bool) -> tuple[int, int]:
    """(image repositories, tags in each) of the fleet pass."""
    return (fleet.QUICK_SIZE, fleet.QUICK_TAGS) if quick else (fleet.FULL_SIZE, fleet.FULL_TAGS)


def _daemon_minutes(quick: bool) -> tuple[int, int]:
    """(simulated minutes, minute the new tags are pushed) of the daemon benchmark."""
    return (daemon.QUICK_MINUTES, daemon.QUICK_PUSH_AT) if quick else (daemon.FULL_MINUTES, daemon.FULL_PUSH_AT)


def _header(quick: bool, runs: int) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    caveat = "; quick sizes prove the benchmarks run, their verdicts mean little" if quick else ""
    return (
        f"gitward benchmarks ({'quick' if quick else 'full'} sizes; {runs} interleaved runs per line unless "
        f"the runs column says otherwise{caveat})\n"
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load}\n"
    )


def format_table(results: Sequence[Result]) -> str:
    """The results as aligned columns, then what each baseline is and any notes.

    A line in `daemon.MIB` (the daemon's memory) shows MiB in the value columns and no rate.
    """
    rows = [_COLUMNS] + [
        (
            r.name,
            f"{r.size:,}",
            str(r.timing.runs),
            *_values(r),
            f"{r.timing.ratio:.2f}x",
            r.goal,
            "met" if r.met else "missed",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    right = {1, 2, 3, 4, 5, 6}
    lines = [
        "  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    ]
    lines.append("")
    lines.append("baselines (same run, same data):")
    lines += [f"  {r.name}: {r.baseline_name}" for r in results]
    notes = [f"  {r.name}: {r.note}" for r in results if r.note]
    if notes:
        lines += ["notes:", *notes]
    return "\n".join(lines)


def _values(r: Result) -> tuple[str, str, str]:
    """The median, rate and baseline cells of a line."""
    if r.unit in (daemon.MIB, ledger.KIB, ledger.MB):
        return f"{r.timing.seconds:.1f} {r.unit}", "-", f"{r.timing.baseline:.1f} {r.unit}"
    return f"{r.timing.seconds:.4f}", f"{r.rate:,.0f} {r.unit}/s", f"{r.timing.baseline:.4f}"


if __name__ == "__main__":
    sys.exit(main())
