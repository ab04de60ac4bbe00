"""No Flux field is ignored in silence: every field of Flux's v1 schemas for GitRepository,
Kustomization, ImageRepository, ImagePolicy and ImageUpdateAutomation (the CRDs of the corpora's
gotk-components.yaml) is either used by gitward or a located `ignored-field` warning, and
docs/flux.md's table "Every field of the v1 APIs" says which, truly.

The cases are those of test_lossless_crd.py (one object per field, and per value of an enum).
A field is *used* when reading it changes what gitward models (compared with the same object
without it, or without its nearest parent gitward reads without an error), or when gitward's
reader requires it; a value equal to the CRD's default changes nothing and needs no word. A field
is *warned* when reading it gives an `ignored-field` warning (which `check`, `plan` and the run's
events carry: tests/integration/test_ignored_fields.py).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

import pytest
import yaml

from engine.errors import Problems
from engine.rules.flux import read_flux
from engine.rules.fluxapi import IGNORED_FIELD
from tests.conftest import HOMELAB_CORPUS, REALWORLD_CORPUS, ROOT, require_corpus
from tests.unit.crd_schema import Schema, crd_schemas
from tests.unit.test_lossless_crd import cases

FIVE = ("GitRepository", "Kustomization", "ImageRepository", "ImagePolicy", "ImageUpdateAutomation")
NOT_MODEL = frozenset({"origin", "flux_fields", "ignored"})
"""Where a rule keeps what it does not act on (carried fields, warnings) and where it was read."""
USED, WARNED = "used", "warned"
CODE_DEFAULTS = {"spec.provider": "generic"}
"""Enum defaults Flux applies in code, not in the CRD (source-controller's git provider)."""
ROW = re.compile(r"^\| (?P<kind>[A-Za-z]+) \| (?P<fields>[^|]+) \| (?P<treatment>used|warned)\b")


@pytest.fixture(scope="module")
def schemas() -> dict[tuple[str, str], Schema]:
    require_corpus(HOMELAB_CORPUS.is_dir() and REALWORLD_CORPUS.is_dir(), "the corpora are absent")
    return crd_schemas(HOMELAB_CORPUS.parent)


def documented() -> dict[tuple[str, str], str]:
    """(kind, field or field=value) -> used|warned, from docs/flux.md's table."""
    rows: dict[tuple[str, str], str] = {}
    for line in (ROOT / "docs" / "flux.md").read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            for name in re.findall(r"`([^`]+)`", match["fields"]):
                rows[(match["kind"], name)] = match["treatment"]
    return rows


def treatment_in_docs(rows: dict[tuple[str, str], str], kind: str, name: str) -> str | None:
    """The row for `name` itself, else for its nearest documented parent field."""
    if (kind, name) in rows:
        return rows[(kind, name)]
    path = name.split("=")[0]
    while path:
        if (kind, path) in rows:
            return rows[(kind, path)]
        path = re.sub(r"(\[0\]|\.[^.\[]+)$", "", path) if "." in path else ""
    return None


def model(doc: dict[str, Any]) -> tuple[object | None, Problems]:
    """What gitward models of `doc`, without what it carries or warns about; None when it is
    not read (an error)."""
    problems = Problems()
    rules = read_flux("object.yaml", yaml.safe_dump(doc, sort_keys=False), problems)
    if problems.errors or len(rules) != 1:
        return None, problems
    return _plain(dataclasses.asdict(rules[0])), problems  # type: ignore[call-overload]


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if key not in NOT_MODEL}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def baseline(doc: dict[str, Any], name: str) -> object | None:
    """The model of `doc` without the field, or without its nearest parent that gitward reads
    without an error; None when gitward requires it (no such parent)."""
    steps: list[str | int] = [int(s) if s.isdigit() else s
                              for s in name.split("=")[0].replace("[0]", ".0").split(".")[1:]]
    for depth in range(len(steps), 0, -1):
        out = copy.deepcopy(doc)
        node = out["spec"]
        for step in steps[:depth - 1]:
            node = node[step]
        del node[steps[depth - 1]]
        read, _ = model(out)
        if read is not None:
            return read
    return None


def about(message: str, name: str) -> bool:
    """Whether a warning (`spec.path: ...`, `spec.path is ignored ...`) speaks of the field
    `name`, of a field above it or of one below it: a case may need another field that has a
    warning of its own (digestReflectionPolicy Always needs spec.interval)."""
    said = re.split(r"[:\s]", message, maxsplit=1)[0]
    if not said.startswith("spec."):
        return True  # not named by its path: count it for the field under test
    path = name.split("=")[0]
    return any(a == b or b.startswith((a + ".", a + "[")) for a, b in ((said, path), (path, said)))


def is_default(name: str, schema: Schema) -> bool:
    """Whether `name` sets an enum to the value its CRD defaults it to."""
    path, _, value = name.partition("=")
    node: Schema = schema["properties"]["spec"]
    for step in path.removeprefix("spec.").replace("[0]", ".[0]").split("."):
        node = node["items"] if step == "[0]" else node["properties"][step]
    return bool(value) and str(node.get("default", CODE_DEFAULTS.get(path))) == value


def only_this_policy(kind: str, name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """An ImagePolicy case for alphabetical or numerical without the base's semver, which Flux
    would use instead (the lossless walk keeps both: a warning without code says so)."""
    if kind == "ImagePolicy" and name.startswith(("spec.policy.alphabetical", "spec.policy.numerical")):
        doc = copy.deepcopy(doc)
        del doc["spec"]["policy"]["semver"]
    return doc


@pytest.mark.parametrize("kind", FIVE)
def test_every_v1_field_is_used_or_warned_as_docs_flux_md_says(
        kind: str, schemas: dict[tuple[str, str], Schema]) -> None:
    require_corpus((kind, "v1") in schemas, f"no corpus CRD serves {kind} v1")
    schema, rows = schemas[(kind, "v1")], documented()
    failures: list[str] = []
    for name, case in cases(kind, "v1", schema):
        doc = only_this_policy(kind, name, case)
        read, problems = model(doc)
        assert read is not None, f"{name}: not read: {[p.message for p in problems.errors]}"
        warned = any(p.code == IGNORED_FIELD and about(p.message, name) for p in problems.warnings)
        base = baseline(doc, name)
        used = not warned and (base is None or base != read)
        if not (warned or used or is_default(name, schema)):
            failures.append(f"{name}: neither used by gitward nor warned about")
            continue
        said = treatment_in_docs(rows, kind, name)
        if said is None:
            failures.append(f"{name}: not in docs/flux.md's table of fields")
        elif said != (WARNED if warned else USED) and not is_default(name, schema):
            failures.append(f"{name}: docs/flux.md says {said}, but it is {WARNED if warned else USED}")
    if failures:
        pytest.fail(f"{kind}:\n" + "\n".join(failures))
