"""Benchmarks: each one times gitward's code and a baseline in the same run, and reports the ratio.

Absolute seconds depend on the machine and on what else runs on it; the ratio to a baseline that
ran interleaved with the subject, on the same data, mostly does not. That is why every line here
carries a baseline, and why subject and baseline alternate run by run: a burst of load from
another process then hits both rather than one of them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


class BenchError(Exception):
    """A benchmark that could not run, or whose subject gave a wrong answer (a fast wrong answer is no result)."""


@dataclass(frozen=True)
class Timing:
    """Medians of `runs` interleaved runs of a subject and its baseline, in seconds.

    `cpu` and `baseline_cpu` are the medians of CPU time spent by the calling thread alone:
    where the work waits on a server, they show the client's own cost without the server's.
    """

    seconds: float
    baseline: float
    runs: int
    cpu: float = 0.0
    baseline_cpu: float = 0.0

    @property
    def ratio(self) -> float:
        return self.seconds / self.baseline if self.baseline > 0 else float("inf")


@dataclass(frozen=True)
class Result:
    """One line of the table. `goal` is shown as written; `met` is whether this run reached it."""

    name: str
    size: int
    unit: str
    timing: Timing
    goal: str
    met: bool
    baseline_name: str
    note: str = ""

    @property
    def rate(self) -> float:
        """`unit`s per second."""
        return self.size / self.timing.seconds if self.timing.seconds > 0 else float("inf")


Setup = Callable[[], Callable[[], object]]
"""Untimed preparation (a fresh database, say) that returns the call to time."""


def ready(work: Callable[[], object]) -> Setup:
    """A Setup for work that needs no preparation."""
    return lambda: work


def interleaved(subject: Setup, baseline: Setup, runs: int) -> Timing:
    """Time `subject` and `baseline` alternately, `runs` times each; their medians.

    A first, uncounted round warms both up (imports, caches, connections).
    """
    if runs < 1:
        raise BenchError(f"runs must be at least 1, not {runs}")
    wall: tuple[list[float], list[float]] = ([], [])
    cpu: tuple[list[float], list[float]] = ([], [])
    for index in range(runs + 1):
        order = [0, 1] if index % 2 == 0 else [1, 0]
        for side in order:
            work = (subject, baseline)[side]()
            started, started_cpu = time.perf_counter(), time.thread_time()
            work()
            elapsed, elapsed_cpu = time.perf_counter() - started, time.thread_time() - started_cpu
            if index:
                wall[side].append(elapsed)
                cpu[side].append(elapsed_cpu)
    median = statistics.median
    return Timing(median(wall[0]), median(wall[1]), runs, median(cpu[0]), median(cpu[1]))
