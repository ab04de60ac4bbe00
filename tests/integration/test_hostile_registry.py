"""Hostile registry answers: tags outside the OCI grammar and tag lists that are not lists.

A loopback HTTP server (a real socket, as the other registry tests use) answers the tag listing
with each case's body. An invalid tag is recorded as invalid (escaped, excluded), never
selected, and printed escaped by `gitward images tags`; a broken list is a failed scan with its
reason. Each case runs `gitward reconcile image repository` and `gitward images tags` in process
and asserts their exit codes and exact lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.model import ScanStatus
from engine.store import decisions as policy_decisions, queries
from engine.store.db import open_store, state_url
from tests.integration.registry_env import QuietServer

VALID = "1.0.0"


@dataclass(frozen=True)
class Answer:
    """A hostile answer: the body of `tags/list`, and what gitward must make of it."""

    body: bytes
    shown: str = ""
    """How `images tags` shows the invalid tag (it is recorded so); "" for a broken list."""
    error: str = ""
    """The failed scan's reason after `...invalid tag list for hostile/<case> (page 1): `."""


def tags(hostile: str, shown: str) -> Answer:
    return Answer(json.dumps({"name": "x", "tags": [VALID, hostile]}).encode(), shown=shown)


def broken(body: bytes, error: str) -> Answer:
    return Answer(body, error=error)


LONG = "9" * 10_000
ANSWERS: dict[str, Answer] = {
    "colour escape": tags("z\x1b[31mred", '"z\\x1b[31mred"'),
    "terminal title escape": tags("z\x1b]0;pwned\x07", '"z\\x1b]0;pwned\\a"'),
    "screen clear": tags("z\x1b[2J\x1b[H", '"z\\x1b[2J\\x1b[H"'),
    "newline posing as two tags": tags("z9.9.9\n9.9.9", '"z9.9.9\\n9.9.9"'),
    "carriage return": tags("z9.9.9\r1.0.0", '"z9.9.9\\r1.0.0"'),
    "NUL": tags("z\x009", '"z\\x009"'),
    "right-to-left mark": tags("\u200f9.9.9", '"\\u200f9.9.9"'),
    "right-to-left override": tags("\u202ez9.9.9", '"\\u202ez9.9.9"'),
    "zero-width space": tags("z\u200b", '"z\\u200b"'),
    "10,000 characters": tags(LONG, '"' + "9" * 104 + '"... (10000 characters)'),
    "129 characters": tags("z" * 129, '"' + "z" * 106 + '"... (129 characters)'),
    "leading dash": tags("-z", '"-z"'),
    "leading dot": tags(".z", '".z"'),
    "space": tags("z 1", '"z 1"'),
    "slash": tags("z/1", '"z/1"'),
    "colon": tags("z:1", '"z:1"'),
    "plus": tags("z+1", '"z+1"'),
    "fullwidth digit": tags("z\uff19", '"z\\uff19"'),
    "DEL": tags("z\x7f", '"z\\x7f"'),
    "empty tag": tags("", '""'),
    "tags not a list": broken(b'{"name": "x", "tags": "1.0.0"}', "'tags' must be a list of strings"),
    "a number among the tags": broken(b'{"name": "x", "tags": ["1.0.0", 7]}', "'tags' must be a list of strings"),
    "not JSON": broken(b"<html>tags</html>", "Expecting value at byte 0 of 17"),
    "a JSON array": broken(b'["1.0.0"]', "expected a JSON object"),
    "JSON nested 100,000 deep": broken(b'{"tags": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                                       "JSON nested too deep to read"),
    "not UTF-8": broken(b'{"tags": ["\xff\xfe"]}', "not UTF-8 text"),
}


class HostileRegistry:
    """A loopback registry that answers `/v2/` and each case's `tags/list` from ANSWERS."""

    def __init__(self) -> None:
        self._server = QuietServer.serving(self._handler())

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                body, status = b"{}", 200
                if path.startswith("/v2/hostile/") and path.endswith("/tags/list"):
                    case = path.removeprefix("/v2/hostile/").removesuffix("/tags/list")
                    answer = next((a for name, a in ANSWERS.items() if _slug(name) == case), None)
                    body, status = (answer.body, 200) if answer else (b'{"errors": []}', 404)
                elif path != "/v2/":
                    body, status = b'{"errors": []}', 404
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


@pytest.fixture(scope="module")
def hostile_registry() -> Iterator[HostileRegistry]:
    registry = HostileRegistry()
    yield registry
    registry.stop()


def _repository(root: Path, image: str) -> None:
    (root / "image.yaml").write_text(f"""\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: app
  namespace: apps
spec:
  image: {image}
  insecure: true
  interval: 5m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: app
  namespace: apps
spec:
  imageRepositoryRef:
    name: app
  policy:
    alphabetical:
      order: asc
""", encoding="utf-8")


@pytest.mark.parametrize("name", list(ANSWERS))
def test_hostile_registry_answer(name: str, hostile_registry: HostileRegistry, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    answer = ANSWERS[name]
    image = f"{hostile_registry.host}/hostile/{_slug(name)}"
    _repository(tmp_path, image)
    monkeypatch.chdir(tmp_path)
    state = state_url(str(tmp_path / "state.db"))
    scanned = main(["--state", state, "reconcile", "image", "repository", "apps/app", "--repo", "."])
    scan_output = capsys.readouterr()
    listed = main(["--state", state, "images", "tags", "apps/app"])
    out, err = capsys.readouterr()
    printed = scan_output.out + scan_output.err + out + err
    assert "internal error" not in printed and "Traceback" not in printed, printed
    with open_store(state) as store:
        scan = queries.latest_scan(store, "apps/app")
        ledger = queries.tags(store, "apps/app")
        decision = policy_decisions.latest_decision(store, "apps/app")
    assert scan is not None and listed == 0
    if answer.error:
        assert scanned == 1, printed
        assert scan.status is ScanStatus.FAILED and not ledger
        where = f"registry {hostile_registry.host} sent an invalid tag list for hostile/{_slug(name)} (page 1)"
        assert scan.error == f"{where}: {answer.error}"
        assert "no tags recorded for ImageRepository apps/app" in err.splitlines()
        return
    assert scanned == 0, printed
    assert scan.status is ScanStatus.OK and scan.tag_count == 1
    assert {t.tag: t.excluded for t in ledger} == {VALID: False, answer.shown: True}
    assert decision is not None and decision.selected_tag == VALID
    rows = [line.split() for line in out.splitlines()[1:]]
    assert ["1", "selected"] == rows[0][:2] and rows[0][-1] == VALID, out
    assert [row[0] for row in rows[1:]].count("invalid") == 1, out
    assert " ".join(answer.shown.split()) in " ".join(out.split()), out
    assert not any(ch in printed for ch in "\x1b\x00\x07\r\u200f\u202e\u200b\x7f"), printed


def test_the_corpus_holds_twenty_answers() -> None:
    assert len(ANSWERS) >= 20


def test_images_import_records_hostile_tags_as_invalid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A tag file is a scan like any other: its invalid tags are recorded escaped, never chosen."""
    _repository(tmp_path, "127.0.0.1:1/hostile/import")
    hostile = ["z\x1b[31mred", "\u200f9.9.9", "z\x00", "9" * 10_000, "z+1"]
    (tmp_path / "tags.txt").write_text("\n".join([VALID, *hostile]) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    state = state_url(str(tmp_path / "state.db"))
    imported = main(["--state", state, "images", "import", "apps/app", "--tags", "tags.txt", "--repo", "."])
    decided = main(["--state", state, "reconcile", "image", "policy", "apps/app", "--repo", "."])
    listed = main(["--state", state, "images", "tags", "apps/app"])
    out, err = capsys.readouterr()
    assert (imported, decided, listed) == (0, 0, 0), out + err
    assert "✔ recorded scan #1 of ImageRepository apps/app: 6 tags (1 after exclusions)" in out.splitlines()
    assert "✔ ImagePolicy apps/app selected 1.0.0" in out.splitlines()
    flat = " ".join(out.split())
    for shown in ('"z\\x1b[31mred"', '"\\u200f9.9.9"', '"z\\x00"', '"z+1"',
                  '"' + "9" * 104 + '"... (10000 characters)'):
        assert shown in flat, out
    assert [line.split()[0] for line in out.splitlines() if line.startswith(" ")].count("invalid") == 5, out
    assert not any(ch in out + err for ch in "\x1b\x00\u200f"), out + err
