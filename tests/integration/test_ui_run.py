"""`gitward run --ui-addr`: the pages of `gitward ui` served beside the loop, over the rules the
loop holds now and the store it writes, read-only, stopping with it."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT
from tests.e2e.test_ui import free_port
from tests.integration.git_env import BareRepo
from tests.integration.test_loop import call, environ, gitward, source_rules


def wait_for(url: str, text: str, process: subprocess.Popen[str]) -> str:
    """The page at `url` once it holds `text` (a wait for the loop, not a timing assert)."""
    deadline = time.monotonic() + 120
    page = ""
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            page = httpx.get(url, timeout=5).text
        except httpx.TransportError:
            page = ""
        if text in page:
            return page
        time.sleep(0.2)
    raise AssertionError(f"{url} never showed {text!r}; last:\n{page}")


def follow_events(base: str) -> None:
    try:
        with httpx.stream("GET", base + "/events/stream", timeout=None) as response:
            for _ in response.iter_lines():
                pass
    except httpx.HTTPError:
        pass


def test_run_serves_the_pages_of_the_rules_it_holds_now(bare_repo: BareRepo, tmp_path: Path) -> None:
    repo = source_rules(tmp_path / "rules", apps=bare_repo.url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        gitward("--state", str(tmp_path / "state.db"), "run", "--repo", str(repo), "--workdir",
                str(tmp_path / "cache"), "--ui-addr", f"127.0.0.1:{port}"),
        cwd=ROOT, env=environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        page = wait_for(base + "/", "stored artifact for revision", process)
        assert "flux-system/apps" in page and "✓ Ready" in page
        counted = httpx.get(base + "/sql", params={"q": "SELECT count(*) AS n FROM git_revisions"})
        assert counted.status_code == 200 and '<th>n</th>' in counted.text
        refused = httpx.get(base + "/sql", params={"q": "DELETE FROM git_revisions"})
        assert "is read-only" in refused.text
        assert httpx.post(base + "/").status_code == 405

        (repo / "more.rules").write_text(
            f'source git second {{\n  url "{bare_repo.url}"\n  branch "main"\n  interval 1s\n}}\n')
        wait_for(base + "/", "flux-system/second", process)
        listening = threading.Thread(target=follow_events, args=(base,), daemon=True)
        listening.start()  # an open live stream must not keep the stop waiting
        time.sleep(1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    try:
        httpx.get(base + "/", timeout=2)
        raise AssertionError("the pages outlived the loop")
    except httpx.TransportError:
        pass


def test_pages_off_loopback_without_a_token_are_refused_before_the_loop_starts(
        bare_repo: BareRepo, tmp_path: Path) -> None:
    repo = source_rules(tmp_path / "rules", apps=bare_repo.url)
    done = call("--state", str(tmp_path / "state.db"), "run", "--repo", str(repo), "--once",
                "--ui-addr", "0.0.0.0:8080")
    assert done.returncode == 2
    assert "--ui-addr 0.0.0.0:8080 is not a loopback address: set a token with --ui-token" in done.stderr
    assert not (tmp_path / "state.db").exists(), "nothing ran"
