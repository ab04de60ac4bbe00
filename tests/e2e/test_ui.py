"""`gitward ui` as a person meets it: the real command serving a real store, read in a real
headless Chromium (Debian `chromium` and `chromium-driver`, installed by tests/env/setup.sh).

Every page must load with no console error (a Content-Security-Policy violation is one) and
no failed request; screenshots at 1280 and 390 px go to test-output/ui/ for a person to look at.
The security checks talk HTTP to a server bound to every address (0.0.0.0), so it needs a token.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.cli import main
from engine.model import Gate
from engine.reconcile.images import decide_policy, record_tags
from engine.reconcile.repo import RepoSpec, load_repository, read_marked_tree
from engine.reconcile.updates import plan_checkout
from engine.store.db import open_store, state_url
from engine.store import queries
from engine.store.queries import record_image_scan
from tests.conftest import EXAMPLES, ROOT, require
from tests.e2e.test_rollback_replay import DEPLOYED, daily_builds
from tests.integration.processes import stop_process

SHOTS = ROOT / "test-output" / "ui"
CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
WIDTHS = (1280, 390)
OUTAGE = "GET https://robot:hunter2@ghcr.io/v2/t-eckert/field-theories/bluesync/tags/list: 503"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(state: Path, repo: Path, *args: str, env: dict[str, str] | None = None,
            addr: str = "127.0.0.1") -> Iterator[str]:
    """`gitward ui` in its own process until the block ends; yields its base URL on loopback."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "--state", str(state), "ui", "--repo", str(repo),
         "--addr", f"{addr}:{port}", *args],
        env={**{k: v for k, v in os.environ.items() if k != "GITWARD_UI_TOKEN"}, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                httpx.get(base + "/static/favicon.svg", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "gitward ui did not start listening"
                time.sleep(0.2)
        yield base
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(CHROMIUM is not None and DRIVER is not None,
            "chromium and chromium-driver are not installed (tests/env/setup.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def visit(driver: Any, url: str, shot: str) -> str:
    """Load `url` at each width: no console error, no failed or refused request; a full-page
    screenshot per width. Returns the page's visible text at the first width."""
    texts = []
    for width in WIDTHS:
        driver.get_log("browser")
        driver.get_log("performance")
        driver.set_window_size(width, 900)
        driver.get(url)
        driver.find_element("css selector", "footer")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(int(height) + 140, 6000))
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert errors == [], f"{url} at {width}px: {errors}"
        assert failed_requests(driver.get_log("performance")) == [], url
        SHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SHOTS / f"{shot}-{width}.png"))
        sideways = driver.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth")
        assert not sideways, f"{url} at {width}px scrolls sideways (only tables and plots may)"
        cards = driver.execute_script(
            "return [...document.querySelectorAll('.scroll')].filter(s => "
            "s.querySelector('table.objects') && s.scrollWidth > s.clientWidth + 1).length")
        assert width > 600 or cards == 0, f"{url} at {width}px: a card is wider than the phone"
        texts.append(driver.find_element("tag name", "body").text)
    return texts[0]


def follow(driver: Any, selector: str, url: str) -> None:
    """Click the element and wait until the browser has gone to `url` (a click does not wait)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element("css selector", selector).click()
    WebDriverWait(driver, 30).until(lambda d: d.current_url == url)


def failed_requests(entries: list[dict[str, Any]]) -> list[str]:
    """Requests that failed or got a 4xx/5xx answer, from Chromium's network log."""
    failed = []
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.loadingFailed":
            failed.append(f"{params.get('errorText')} {params.get('blockedReason', '')}")
        elif message["method"] == "Network.responseReceived" and params["response"]["status"] >= 400:
            failed.append(f"{params['response']['status']} {params['response']['url']}")
    return failed


def test_overview_and_policy_pages_of_the_example_store(browser: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    shutil.copy(ROOT / "state.db.example", state)
    with serving(state, EXAMPLES / "homelab") as base:
        text = visit(browser, base + "/", "overview")
        for expected in ("Sources", "Kustomizations", "Image repositories", "Image policies",
                         "Image update automations", "Suspensions", "ledger/ledger",
                         "podinfo/podinfo", "20251105-1650-sha-8b9c0d1", "in sync with its source"):
            assert expected in text, expected
        times = browser.find_elements("css selector", "time[datetime]")
        assert times and all(t.get_attribute("title").endswith("UTC") for t in times), \
            "static/time.js did not show times in the viewer's zone with UTC on hover"

        follow(browser, "a[href='/policy/ledger/ledger']", base + "/policy/ledger/ledger")
        text = visit(browser, base + "/policy/ledger/ledger", "policy-ledger")
        assert "Selected 20251105-1650-sha-8b9c0d1 (value 20251105-1650); previously 20251104-0805-sha-6f7a8b9." in text
        assert "Runner-up 20251105-1020-sha-7a8b9c0" in text
        assert browser.find_elements("css selector", "svg line.tag")
        assert len(browser.find_elements("css selector", "svg circle.pick")) == 3

        browser.find_element("css selector", "#verdict option[value=filtered]").click()
        follow(browser, "form.filter button", base + "/policy/ledger/ledger?verdict=filtered")
        rows = browser.find_elements("css selector", "section[aria-labelledby=trace] tbody tr")
        assert [r.text.split()[0] for r in rows] == ["latest"]

        follow(browser, "a[href='/repository/ledger/ledger']", base + "/repository/ledger/ledger")
        text = visit(browser, browser.current_url, "repository-ledger")
        assert "ledger/ledger" in text and "✓ ok" in text
        ledger = {r.text.split()[0]: r.text for r in
                  browser.find_elements("css selector", "section[aria-labelledby=ledger] tbody tr")}
        assert "selected" in ledger["20251105-1650-sha-8b9c0d1"]
        assert "filtered" in ledger["latest"] and "excluded" in ledger["sha-1a2b3c4"]

        follow(browser, "nav a[href='/events']", base + "/events")
        text = visit(browser, base + "/events", "events")
        assert "CommitPushed" in text and "NewSelection" in text
        browser.find_element("css selector", "#kind option[value=ImagePolicy]").click()
        browser.find_element("css selector", "#name").send_keys("ledger/ledger")
        follow(browser, "form.filter button",
               base + "/events?kind=ImagePolicy&name=ledger%2Fledger&severity=")
        rows = [r.text for r in browser.find_elements("css selector", "tbody tr")]
        assert len(rows) == 3 and all("ImagePolicy ledger/ledger" in r for r in rows), rows
        assert "selected 20251105-1650-sha-8b9c0d1 (was 20251104-0805-sha-6f7a8b9)" in rows[0]


def test_kustomization_automation_lead_time_and_sql_pages(browser: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    shutil.copy(ROOT / "state.db.example", state)
    with serving(state, EXAMPLES / "homelab") as base:
        browser.get(base + "/")
        follow(browser, "a[href='/kustomization/flux-system/flux-system']",
               base + "/kustomization/flux-system/flux-system")
        text = visit(browser, browser.current_url, "kustomization")
        assert "Applied revision: main@sha1:f079f121bf7a (20 objects)" in text
        inventory = {r.text.split()[0]: r.text for r in browser.find_elements(
            "css selector", "section[aria-labelledby=inventory] tbody tr")}
        assert "pruned" in inventory["ConfigMap/ledger/ledger-config"]
        assert "applied" in inventory["Deployment.apps/ledger/ledger"]
        applies = browser.find_elements("css selector", "section[aria-labelledby=applies] article")
        assert len(applies) == 6, "five applies and one prune"
        [pruned] = [a.text for a in applies if a.text.startswith("✓ prune")]
        assert "ConfigMap/ledger/ledger-config\nprune" in pruned
        assert "f079f121bf7a" in applies[0].text, "newest first"
        assert ("spec.template.spec.containers[name=ledger].image: ghcr.io/example/ledger:"
                "20251103-1130-sha-4d5e6f7 → ghcr.io/example/ledger:20251104-0805-sha-6f7a8b9"
                ) in text

        browser.get(base + "/")
        follow(browser, "a[href='/automation/ledger/ledger']", base + "/automation/ledger/ledger")
        text = visit(browser, browser.current_url, "automation")
        commits = browser.find_elements("css selector", "section[aria-labelledby=commits] article")
        assert [c.text.split()[2] for c in commits] == ["f079f121bf7a", "961b38258b96"]
        assert "Gitward-Decision: 5" in commits[0].text
        assert "#5 ledger/ledger selected 20251105-1650-sha-8b9c0d1" in commits[0].text
        assert "cluster/apps/ledger/deployment.yaml:20" in commits[0].text

        follow(browser, "nav a[href='/lead-time']", base + "/lead-time")
        text = visit(browser, base + "/lead-time", "lead-time")
        assert "Median to commit\n15m" in text and "Median to apply\n1m" in text
        bars = [title_of(g) for g in browser.find_elements("css selector", "svg g")]
        assert bars == ["ledger/ledger 20251104-0805-sha-6f7a8b9: 15m to commit, 1m to apply",
                        "podinfo/podinfo 6.7.0: 0s to commit, 1m to apply",
                        "ledger/ledger 20251105-1650-sha-8b9c0d1: 15m to commit, 1m to apply"]
        browser.find_element("css selector", "#policy option[value='podinfo/podinfo']").click()
        follow(browser, "form.filter button", base + "/lead-time?policy=podinfo%2Fpodinfo")
        assert len(browser.find_elements("css selector", "svg g")) == 1

        follow(browser, "nav a[href='/sql']", base + "/sql")
        visit(browser, base + "/sql", "sql")
        browser.find_element("xpath", "//a[code='v_policy_latest']").click()
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(browser, 30).until(lambda d: d.find_elements("id", "result"))
        text = visit(browser, browser.current_url, "sql-policy-latest")
        rows = [r.text.split() for r in browser.find_elements("css selector", "table.result tbody tr")]
        assert [r[:3] for r in rows] == [
            ["ledger/ledger", "20251105-1650-sha-8b9c0d1", "20251104-0805-sha-6f7a8b9"],
            ["podinfo/podinfo", "6.7.0", "6.5.1"]]
        query = browser.find_element("id", "q")
        query.clear()
        query.send_keys("DELETE FROM events")
        browser.find_element("css selector", "form.console button").click()
        WebDriverWait(browser, 30).until(lambda d: d.find_elements("css selector", "[role=alert]"))
        assert "is read-only" in browser.find_element("css selector", "[role=alert]").text
    with open_store(state_url(str(state)), readonly=True) as store:
        assert len(queries.list_events(store, limit=1000)) > 0, "the refused DELETE deleted nothing"


def test_the_events_page_shows_new_events_live_through_its_filters(
        browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    state = tmp_path / "state.db"
    shutil.copy(ROOT / "state.db.example", state)
    with serving(state, EXAMPLES / "homelab") as base:
        browser.get(base + "/events?kind=&name=&severity=warning")
        WebDriverWait(browser, 30).until(
            lambda d: d.find_element("id", "live").text.startswith("Live: "))
        assert browser.find_element("css selector", "#events tbody").text == "No events match."
        now = datetime.now(UTC)
        with open_store(state_url(str(state))) as store:
            for severity, reason in ((queries.EventSeverity.INFO, "Quiet"),
                                     (queries.EventSeverity.WARNING, "Loud")):
                queries.record_event(store, queries.Event(
                    now, "ImagePolicy", "ledger/ledger", severity, reason,
                    "<b>held</b> at https://robot:hunter2@ghcr.io/v2/x"))
        WebDriverWait(browser, 30).until(
            lambda d: "Loud" in d.find_element("css selector", "#events tbody").text)
        [first] = browser.find_elements("css selector", "#events tbody tr")
        assert [td.text for td in first.find_elements("tag name", "td")][1:] == [
            "⚠ warning", "ImagePolicy ledger/ledger", "Loud",
            "<b>held</b> at https://ghcr.io/v2/x"], "as text, credentials scrubbed"
        assert first.find_element("tag name", "time").get_attribute("title").endswith("UTC")
        assert not [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert "Quiet" not in browser.find_element("id", "events").text
        browser.get("about:blank")  # close the stream before its server stops


def test_the_sql_page_scrubs_credentials_from_values(tmp_path: Path) -> None:
    """Values are scrubbed as every page's text is; the statement typed is shown as typed."""
    state = tmp_path / "state.db"
    shutil.copy(ROOT / "state.db.example", state)
    with serving(state, EXAMPLES / "homelab") as base:
        page = httpx.get(base + "/sql", params={"q": "SELECT 'https://robot:hunter2@ghcr.io/v2/x' AS url"})
        assert page.status_code == 200
        result = page.text.split('id="result"')[1]
        assert "hunter2" not in result and "https://ghcr.io/v2/x" in result


def replay_by_day(state: Path, repo: Path, days: list[list[str]]) -> list[str]:
    """The incident as `gitward run` would have recorded it: each evening one scan listing
    every tag pushed so far and one decision of the policy, dated that day (`images import`
    dates its scan now, so a timeline of it would be a single instant). Returns every build."""
    rules = load_repository(RepoSpec(repo)).one().rules
    [repository] = [r for r in rules.image_repositories if r.key.ref == "field-theories/bluesync"]
    [policy] = [p for p in rules.image_policies if p.key.ref == "field-theories/bluesync"]
    pushed: list[str] = []
    with open_store(state_url(str(state))) as store:
        for day, builds in zip(_dates(days), days):
            pushed += builds
            evening = datetime(day.year, day.month, day.day, 23, 0, tzinfo=UTC)
            record_tags(store, repository, [t for b in pushed for t in (b, "sha-" + b[-7:])],
                        started_at=evening, finished_at=evening)
            decide_policy(store, rules, policy, now=evening, deployed=DEPLOYED)
            if day == date(2025, 12, 24):
                record_image_scan(store, repository.key.ref, [], started_at=evening + timedelta(hours=1),
                                  finished_at=evening + timedelta(hours=1), error=OUTAGE)
        planned = plan_checkout(read_marked_tree(repo, rules), rules, store, evening + timedelta(hours=1), record=True)
    assert [(g.gate, g.current, g.proposed) for g in planned.warned] == [
        (Gate.ROLLBACK, DEPLOYED, pushed[0])]
    return pushed


def _dates(days: list[list[str]]) -> list[date]:
    return [date(int(b[0][:4]), int(b[0][4:6]), int(b[0][6:8])) for b in days]


def test_the_users_rollback_shows_the_lint_the_hold_and_the_timeline(
        browser: Any, homelab_corpus: Path, tmp_path: Path) -> None:
    repo = tmp_path / "homelab"
    shutil.copytree(homelab_corpus, repo)
    state = tmp_path / "state.db"
    builds = replay_by_day(state, repo, daily_builds(date(2025, 11, 3), date(2026, 1, 17)))
    oldest = builds[0]
    with serving(state, repo) as base:
        text = visit(browser, base + "/", "overview-rollback")
        assert "Held: rollback: the ledger first saw " + oldest in text
        [row] = [r for r in browser.find_elements("css selector", "tr")
                 if "field-theories/bluesync" in r.text and "Held:" in r.text]
        cells = {td.get_attribute("data-label"): " ".join(td.get_attribute("textContent").split())
                 for td in row.find_elements("tag name", "td")}
        assert (cells["Selected"], cells["Deployed (git)"]) == (oldest, f"{DEPLOYED} differs")
        assert "Lint: order desc selects the lowest value" in text

        text = visit(browser, base + "/policy/field-theories/bluesync", "policy-rollback")
        assert f"Not applied to git: rollback: the ledger first saw {oldest}" in text
        assert f"Selected {oldest}" in text
        assert "Lint: order desc selects the lowest value" in text
        browser.set_window_size(1280, 2000)
        browser.find_element("css selector", "figure.plot").screenshot(
            str(SHOTS / "policy-rollback-timeline.png"))
        [pick] = browser.find_elements("css selector", "svg circle.pick")
        assert title_of(pick) == f"2025-11-03 23:00 UTC: selected {oldest}", \
            "the selection never moved from the first day's build"
        [here] = browser.find_elements("css selector", "svg path.deployed")
        assert title_of(here) == f"deployed: git holds {DEPLOYED} now"
        [hold] = browser.find_elements("css selector", "svg rect.hold")
        assert title_of(hold).startswith("held: ") and f"rollback: the ledger first saw {oldest}" \
            in title_of(hold)
        bars = {title_of(b).split(":")[0]: title_of(b)
                for b in browser.find_elements("css selector", "svg line.tag")}
        assert bars[DEPLOYED].startswith(f"{DEPLOYED}: first seen 2026-01-17 23:00 UTC")
        assert bars[oldest].startswith(f"{oldest}: first seen 2025-11-03 23:00 UTC")

        follow(browser, "a[href='/repository/field-theories/bluesync']",
               base + "/repository/field-theories/bluesync")
        text = visit(browser, browser.current_url, "repository-rollback")
        assert "✗ failed" in text and "GET https://ghcr.io/v2/t-eckert/field-theories" in text
        assert "hunter2" not in browser.page_source and "robot" not in browser.page_source
        rows = [r.text for r in
                browser.find_elements("css selector", "section[aria-labelledby=ledger] tbody tr")]
        ledger = {r.split()[0]: r for r in rows}
        assert "listed" in ledger[DEPLOYED] and "selected" in ledger[oldest]
        assert "excluded" in ledger[f"sha-{DEPLOYED[-7:]}"]
        text = visit(browser, base + "/events?severity=warning", "events-rollback")
        warnings = [r.text for r in browser.find_elements("css selector", "tbody tr")]
        assert all("⚠ warning" in w for w in warnings)
        [held] = [w for w in warnings if "UpdateHeld" in w]
        assert f"{DEPLOYED} -> {oldest} held" in held
        browser.get(base + "/repository/field-theories/bluesync")
        seen = [t.get_attribute("datetime") for t in browser.find_elements(
            "css selector", "section[aria-labelledby=ledger] tbody td:nth-child(2) time")]
        assert (seen[0], seen[-1]) == ("2026-01-17T23:00:00Z", "2025-11-03T23:00:00Z")
        assert seen == sorted(seen, reverse=True), "newest first"


def title_of(element: Any) -> str:
    return str(element.find_element("tag name", "title").get_attribute("textContent"))


def test_off_loopback_every_request_needs_the_token(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    shutil.copy(ROOT / "state.db.example", state)
    with serving(state, EXAMPLES / "homelab", addr="0.0.0.0",
                 env={"GITWARD_UI_TOKEN": "s3cret; token"}) as base:
        for path in ("/", "/policy/ledger/ledger", "/static/ui.css", "/nowhere"):
            assert httpx.get(base + path).status_code == 401, path
            wrong = httpx.get(base + path, headers={"Authorization": "Bearer s3cret; tokeN"})
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
        assert httpx.get(base + "/?token=guess").status_code == 401
        right = httpx.get(base + "/", headers={"Authorization": "Bearer s3cret; token"})
        assert right.status_code == 200 and "ledger/ledger" in right.text
        assert "s3cret; token" not in right.text

        with httpx.Client(base_url=base) as client:
            signed = client.get("/policy/ledger/ledger?token=s3cret%3B%20token&verdict=lower")
            assert signed.status_code == 303
            assert signed.headers["location"] == "/policy/ledger/ledger?verdict=lower"
            assert "HttpOnly" in signed.headers["set-cookie"]
            page = client.get(signed.headers["location"])
            assert page.status_code == 200 and "Runner-up" in page.text

        post = httpx.post(base + "/", headers={"Authorization": "Bearer s3cret; token"})
        assert post.status_code == 405 and post.headers["allow"] == "GET"
        assert "default-src 'self'" in right.headers["content-security-policy"]
        assert right.headers["x-content-type-options"] == "nosniff"


def test_a_loopback_server_needs_no_token_and_refuses_writes(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    shutil.copy(ROOT / "state.db.example", state)
    with serving(state, EXAMPLES / "homelab") as base:
        assert httpx.get(base + "/").status_code == 200
        assert httpx.get(base + "/policy/ledger/nope").status_code == 404
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert httpx.request(method, base + "/").status_code == 405, method


def test_an_address_off_loopback_without_a_token_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITWARD_UI_TOKEN", raising=False)
    code = main(["--state", str(tmp_path / "s.db"), "ui", "--repo", str(EXAMPLES / "homelab"),
                 "--addr", "0.0.0.0:8080"])
    assert code == 2
    assert "not a loopback address: set a token with --token or GITWARD_UI_TOKEN" in \
        capsys.readouterr().err
