"""Alerts to a real HTTP receiver on loopback, and `gitward run --metrics-addr` scraped for real."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from engine.act.notify import failure_event, notify, update_event
from engine.model import (
    Alert,
    AlertEvent,
    AlertKind,
    CommitAction,
    CommitAuthor,
    FileChange,
    ObjectKey,
)
from tests.conftest import ROOT
from tests.integration.git_env import BareRepo
from tests.integration.test_loop import call, environ, gitward, source_rules

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server that records every POST and answers with `status`."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    status: int = 200

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            holder[0].requests.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(holder[0].status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()
    thread.join()


ACTION = CommitAction(
    source=ObjectKey("GitRepository", "flux-system", "flux-system"), url="file:///r.git",
    checkout_branch="main", push_branch="main", automations=("podinfo/podinfo",),
    author=CommitAuthor("bot", "bot@example.com"), message="Update",
    files=(FileChange("apps/podinfo.yaml", 7, "ghcr.io/p/podinfo:6.5.1", "ghcr.io/p/podinfo:6.7.0",
                      "podinfo/podinfo", "tag"),))


def test_webhook_gets_json_and_ntfy_gets_text_with_title_and_tags(receiver: Receiver) -> None:
    alerts = [
        Alert("hook", (AlertEvent.UPDATE,), AlertKind.WEBHOOK, f"{receiver.url}/hook?token=s3cret"),
        Alert("phone", (AlertEvent.UPDATE, AlertEvent.FAILURE), AlertKind.NTFY, f"{receiver.url}/ntfy", "homelab"),
        Alert("failures-only", (AlertEvent.FAILURE,), AlertKind.WEBHOOK, f"{receiver.url}/other"),
    ]

    deliveries = notify(alerts, update_event(ACTION, "abc123", NOW))

    assert [(d.alert, d.ok, d.receiver) for d in deliveries] == [
        ("hook", True, receiver.url), ("phone", True, receiver.url)]
    hook, ntfy = receiver.requests
    assert hook.path == "/hook?token=s3cret"
    body = json.loads(hook.body)
    assert (body["event"], body["kind"], body["namespace"], body["name"], body["revision"]) == (
        "update", "ImageUpdateAutomation", "podinfo", "podinfo", "abc123")
    assert "ghcr.io/p/podinfo:6.5.1 -> ghcr.io/p/podinfo:6.7.0" in body["message"]
    assert body["changes"] == [{"path": "apps/podinfo.yaml", "line": 7, "old": "ghcr.io/p/podinfo:6.5.1",
                                "new": "ghcr.io/p/podinfo:6.7.0", "policy": "podinfo/podinfo"}]
    assert ntfy.path == "/ntfy/homelab"
    assert ntfy.headers["Title"] == "gitward: image update pushed to flux-system/flux-system@main"
    assert ntfy.headers["Tags"] == "package"
    text = ntfy.body.decode()
    assert "6.5.1 -> ghcr.io/p/podinfo:6.7.0" in text and "commit abc123 pushed to main" in text


def test_a_failed_delivery_is_returned_and_names_no_secret(receiver: Receiver) -> None:
    receiver.status = 500
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    alerts = [
        Alert("broken", (AlertEvent.FAILURE,), AlertKind.WEBHOOK, f"http://user:pw@127.0.0.1:{receiver.url.rsplit(':', 1)[1]}/T0KEN"),
        Alert("gone", (AlertEvent.FAILURE,), AlertKind.NTFY, f"http://127.0.0.1:{dead}/s3cret", "topic"),
    ]
    event = failure_event(ObjectKey("GitRepository", "apps", "web"), "fetch failed: https://u:pw@git.example/r",
                          "", NOW)

    deliveries = notify(alerts, event)

    assert [(d.alert, d.ok) for d in deliveries] == [("broken", False), ("gone", False)]
    assert deliveries[0].error == "HTTP 500"
    assert deliveries[1].error.startswith("ConnectError")
    for delivery in deliveries:
        shown = f"{delivery.receiver} {delivery.error}"
        assert "pw" not in shown and "T0KEN" not in shown and "s3cret" not in shown
    sent = json.loads(receiver.requests[0].body)
    assert sent["message"] == "fetch failed: https://git.example/r"
    assert receiver.requests[0].headers["Authorization"].startswith("Basic ")


def test_run_once_alerts_on_the_pushed_update_and_on_a_failure(
        homelab_remote: tuple[BareRepo, Path], tmp_path: Path, receiver: Receiver) -> None:
    bare, repo = homelab_remote
    (repo / "alerts.rules").write_text(
        f'alert ops {{\n  on update failure\n  webhook "{receiver.url}/hook"\n}}\n\n'
        f'alert phone {{\n  on failure\n  ntfy "{receiver.url}/ntfy/gitward"\n}}\n\n'
        f'source git missing {{\n  url "file://{tmp_path}/missing.git"\n}}\n')
    state = str(tmp_path / "state.db")
    for day, listed in enumerate(("6.5.1\n", "6.5.1\n6.6.0\n6.7.0\n")):  # 6.7.0 is seen later
        tags = tmp_path / f"tags-{day}.txt"
        tags.write_text(listed)
        assert call("--state", state, "images", "import", "podinfo/podinfo", "--tags", str(tags),
                    "--repo", str(repo)).returncode == 0
    for namespace in ("podinfo", "ledger"):  # the registries are out of reach: decide on the ledger
        assert call("--state", state, "suspend", "image", "repository", "--all", "-n", namespace,
                    "--repo", str(repo)).returncode == 0

    done = call("--state", state, "run", "--repo", str(repo), "--once", "--log-format", "json",
                "--workdir", str(tmp_path / "cache"))

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    hooks = [json.loads(r.body) for r in receiver.requests if r.path == "/hook"]
    update = next(h for h in hooks if h["event"] == "update")
    assert update["revision"] == bare.rev("main")
    assert any(c["new"].endswith("6.7.0") and c["policy"] == "podinfo/podinfo" for c in update["changes"])
    assert f"commit {bare.rev('main')}" in update["message"]
    failure = next(h for h in hooks if h["event"] == "failure")
    assert (failure["kind"], failure["namespace"], failure["name"]) == (
        "GitRepository", "flux-system", "missing")
    phone = [r for r in receiver.requests if r.path == "/ntfy/gitward"]
    assert [r.headers["Tags"] for r in phone] == ["warning"]
    assert phone[0].headers["Title"] == "gitward: GitRepository flux-system/missing failed"


def test_run_serves_metrics_on_the_given_address(bare_repo: BareRepo, tmp_path: Path) -> None:
    repo = source_rules(tmp_path / "rules", apps=bare_repo.url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        gitward("--state", str(tmp_path / "state.db"), "run", "--repo", str(repo), "--workdir",
                str(tmp_path / "cache"), "--metrics-addr", f"127.0.0.1:{port}"),
        cwd=ROOT, env=environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        scraped = ""
        deadline = time.monotonic() + 120  # a wait for the first reconcile, not a timing assert
        while time.monotonic() < deadline and "gitward_last_success_timestamp_seconds{" not in scraped:
            try:
                scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    labels = 'kind="GitRepository",name="apps",namespace="flux-system",object="flux-system/apps"'
    assert f'gitward_reconciles_total{{{labels},outcome="ok"}}' in scraped
    assert 'gitward_reconcile_duration_seconds_count{kind="GitRepository"}' in scraped
    assert f"gitward_last_success_timestamp_seconds{{{labels}}}" in scraped
    assert "Traceback" not in stderr


def test_a_bad_metrics_address_is_a_user_error(bare_repo: BareRepo, tmp_path: Path) -> None:
    repo = source_rules(tmp_path / "rules", apps=bare_repo.url)
    done = call("--state", str(tmp_path / "state.db"), "run", "--repo", str(repo), "--once",
                "--metrics-addr", "localhost")
    assert done.returncode == 2
    assert "--metrics-addr localhost: expected HOST:PORT" in done.stderr
    assert "Traceback" not in done.stderr
