"""`gitward run --metrics-addr` scraped and probed over real HTTP: the per-object series after
scans of the real registry (one answer 429 first, through the fault-injecting proxy), /healthz
and /readyz, readiness lost to another daemon and to an unreachable PostgreSQL store, and the
dashboard and alerts of deploy/monitoring/ naming only series a run exports."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from engine.reconcile.heartbeat import LEASE_TTL
from engine.store.db import open_store
from engine.store.leases import DAEMON_PREFIX, acquire_lease, list_leases
from tests.conftest import ROOT
from tests.integration.conftest import PG_PASSWORD, PgServer
from tests.integration.registry_env import PUBLIC_TAGS, PagingProxy, RunningRegistry
from tests.integration.test_loop import environ, gitward

MONITORING = ROOT / "deploy" / "monitoring"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Run:
    process: subprocess.Popen[str]
    base: str
    """http://127.0.0.1:PORT of --metrics-addr."""
    stderr: str = ""
    """Its log, once it has stopped."""


@contextmanager
def running(state: str, repo: Path, tmp_path: Path) -> Iterator[Run]:
    """`gitward run` with --metrics-addr on a free loopback port; SIGTERM after the block."""
    port = free_port()
    process = subprocess.Popen(
        gitward("--state", state, "run", "--repo", str(repo), "--workdir", str(tmp_path / "cache"),
                "--metrics-addr", f"127.0.0.1:{port}"),
        cwd=ROOT, env=environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = Run(process, f"http://127.0.0.1:{port}")
    try:
        yield run
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            run.stderr = process.communicate(timeout=60)[1]
        except subprocess.TimeoutExpired:
            process.kill()
            run.stderr = process.communicate()[1]


def wait_for(process: subprocess.Popen[str], what: str, check: Callable[[], bool]) -> None:
    """Poll `check` until it holds; a wait for the run to get there, not a timing assert."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, f"gitward run exited ({process.returncode}) before {what}"
        time.sleep(0.2)
    raise AssertionError(f"gitward run did not get to {what}")


def samples(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scraped: Samples, series: str, **labels: str) -> float:
    key = (series, frozenset(labels.items()))
    assert key in scraped, f"no {series}{labels} in {sorted(k for k in scraped if k[0] == series)}"
    return scraped[key]


def exported_names(text: str) -> set[str]:
    """Every series name /metrics declares: its samples', and those of families declared (HELP,
    TYPE) that have none yet (alerts sent, say)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {s.name for s in family.samples}
        names |= {f"{family.name}_total"} if family.type == "counter" else {family.name}
    return names


def image_rules(repo: Path, body: str) -> Path:
    repo.mkdir()
    (repo / "images.rules").write_text(body)
    return repo


def referenced_metrics(expressions: list[str]) -> set[str]:
    """The series names PromQL `expressions` read: `gitward_*`/`gotk_*` tokens; any other name
    before a selector (`x{`) or a range (`x[`) too, so no foreign series slips through."""
    names: set[str] = set()
    for expr in expressions:
        without_labels = re.sub(r"\{[^}]*\}", "{}", expr)
        names |= set(re.findall(r"\b(?:gitward|gotk)_[a-z_]+\b", without_labels))
        names |= set(re.findall(r"\b([a-zA-Z_:][\w:]*)\s*[\[{]", without_labels))
    return names


def monitoring_expressions() -> dict[str, list[str]]:
    """Every PromQL text of deploy/monitoring/: the dashboard's targets and variables, the alerts."""
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    in_dashboard = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    in_dashboard += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    alerts = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    return {"grafana-dashboard.json": in_dashboard, "prometheusrule.yaml": alerts}


def test_run_exports_object_scan_and_registry_series_with_flux_labels(
        open_registry: RunningRegistry, paging_proxy: Callable[..., PagingProxy],
        tmp_path: Path) -> None:
    proxy = paging_proxy(open_registry)
    proxy.faults.rate_limited = 1  # the first tag listing is refused: 429, retried at once
    proxy.faults.retry_after = "0"
    repo = image_rules(tmp_path / "rules", f"""
image repository apps/app {{
  image "{proxy.host}/public/app"
  insecure true
  interval 1h
}}

image repository apps/gone {{
  image "{proxy.host}/nothere/app"
  insecure true
  interval 1h
}}

image repository apps/paused {{
  image "{proxy.host}/public/app"
  insecure true
  interval 1h
  suspend true
}}
""")
    object_labels = {"kind": "ImageRepository", "namespace": "apps"}
    with running(str(tmp_path / "state.db"), repo, tmp_path) as run:
        wait_for(run.process, "both scans", lambda: all(
            f'gitward_last_reconcile_timestamp_seconds{{kind="ImageRepository",name="{name}"'
            in httpx.get(f"{run.base}/metrics").text for name in ("app", "gone")))
        scraped_text = httpx.get(f"{run.base}/metrics").text
        healthz, readyz = httpx.get(f"{run.base}/healthz"), httpx.get(f"{run.base}/readyz")
        missing = httpx.get(f"{run.base}/nothing")
    scraped = samples(scraped_text)

    ready = {(name, status): value(scraped, "gotk_reconcile_condition", **object_labels, name=name,
                                   type="Ready", status=status)
             for name in ("app", "gone", "paused") for status in ("True", "False", "Unknown")}
    assert ready == {("app", "True"): 1, ("app", "False"): 0, ("app", "Unknown"): 0,
                     ("gone", "True"): 0, ("gone", "False"): 1, ("gone", "Unknown"): 0,
                     ("paused", "True"): 0, ("paused", "False"): 0, ("paused", "Unknown"): 1}
    assert value(scraped, "gotk_suspend_status", **object_labels, name="paused") == 1
    assert value(scraped, "gotk_suspend_status", **object_labels, name="app") == 0
    assert value(scraped, "gitward_image_repository_tags", **object_labels, name="app",
                 image=f"{proxy.host}/public/app") == len(PUBLIC_TAGS)
    assert not [k for k in scraped if k[0] == "gitward_image_repository_tags"
                and ("name", "gone") in k[1]]  # a failed scan counts no tags
    assert value(scraped, "gitward_reconcile_interval_seconds", **object_labels, name="app") == 3600
    assert value(scraped, "gotk_reconcile_duration_seconds_count", **object_labels, name="app") == 1
    assert value(scraped, "gitward_last_success_timestamp_seconds", **object_labels, name="app",
                 object="apps/app") > 0
    assert ("gitward_last_success_timestamp_seconds",
            frozenset({**object_labels, "name": "gone", "object": "apps/gone"}.items())) not in scraped
    assert value(scraped, "gitward_last_reconcile_timestamp_seconds", **object_labels, name="gone") > 0
    assert value(scraped, "gitward_reconciles_total", **object_labels, name="gone", object="apps/gone",
                 outcome="failed") == 1
    assert value(scraped, "gitward_registry_rate_limited_total", host=proxy.host) == 1
    assert value(scraped, "gitward_registry_requests_total", host=proxy.host, code="429") == 1
    assert value(scraped, "gitward_registry_requests_total", host=proxy.host, code="200") >= 1
    assert value(scraped, "gitward_registry_requests_total", host=proxy.host, code="404") >= 1
    assert value(scraped, "gitward_daemon_ready") == 1 and value(scraped, "gitward_loop_alive") == 1

    assert (healthz.status_code, readyz.status_code, missing.status_code) == (200, 200, 404)
    assert healthz.text.startswith("ok: ") and "# HELP" not in healthz.text
    assert readyz.text.startswith(f"ok: holding lease {DAEMON_PREFIX}")

    exported = exported_names(scraped_text)
    for path, expressions in monitoring_expressions().items():
        named = referenced_metrics(expressions)
        assert named, path
        assert named <= exported, f"{path} names series gitward does not export: {named - exported}"


def test_readyz_turns_503_when_another_daemon_takes_the_lease(
        open_registry: RunningRegistry, tmp_path: Path) -> None:
    repo = image_rules(tmp_path / "rules", f"""
image repository apps/app {{
  image "{open_registry.host}/public/app"
  insecure true
  interval 1h
}}
""")
    state = f"sqlite:///{tmp_path / 'state.db'}"
    with running(state, repo, tmp_path) as run:
        wait_for(run.process, "ready", lambda: httpx.get(f"{run.base}/readyz").status_code == 200)
        with open_store(state) as store:
            [lease] = [le for le in list_leases(store) if le.name.startswith(DAEMON_PREFIX)]
            # another gitward finding the lease past its expiry (a stalled heartbeat) takes it
            later = datetime.now(UTC) + 2 * LEASE_TTL
            assert acquire_lease(store, lease.name, "other-gitward", LEASE_TTL, later)
        readyz, healthz = httpx.get(f"{run.base}/readyz"), httpx.get(f"{run.base}/healthz")
        scraped = samples(httpx.get(f"{run.base}/metrics").text)
    assert readyz.status_code == 503
    assert readyz.text == f"lease {lease.name} is held by another gitward (other-gitward)\n"
    assert healthz.status_code == 200  # the loop itself goes on
    assert value(scraped, "gitward_daemon_ready") == 0


@contextmanager
def silent_registry() -> Iterator[socket.socket]:
    """A listener that takes connections and never answers: a scan of it hangs (in the loop)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(120)
        yield listener


def test_readyz_turns_503_when_the_store_stops_answering(
        pg_server: PgServer, pg_url: str, tmp_path: Path) -> None:
    database = pg_url.rsplit("/", 1)[1]
    with silent_registry() as listener:
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        repo = image_rules(tmp_path / "rules", f"""
image repository apps/app {{
  image "{host}/public/app"
  insecure true
  interval 1h
}}
""")
        with running(pg_url, repo, tmp_path) as run:
            wait_for(run.process, "ready", lambda: httpx.get(f"{run.base}/readyz").status_code == 200)
            scanning, _ = listener.accept()  # the loop is in the scan, away from the store
            with scanning, pg_server.admin() as admin:
                admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s", (database,))
                readyz, healthz = httpx.get(f"{run.base}/readyz"), httpx.get(f"{run.base}/healthz")
                again = httpx.get(f"{run.base}/readyz")
                admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
    assert readyz.status_code == 503 and again.status_code == 503
    assert readyz.text.startswith("the store does not answer: cannot read state database "
                                  "postgresql+psycopg://gitward:***@"), readyz.text
    assert PG_PASSWORD not in readyz.text and "Traceback" not in run.stderr
    assert healthz.status_code == 200 and healthz.text.startswith("ok: reconciling ImageRepository/")

