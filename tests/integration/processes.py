"""Stopping the servers and commands the tests and benchmarks start."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen[bytes] | subprocess.Popen[str], grace: float = 5) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds; a no-op once it has."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
