"""gitward's Go template engine against Go itself: every case in gotemplate_cases.py renders
(or fails) exactly as Go's text/template with Flux's functions and data did."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from engine.evaluate.commitmessage import MessageChange, ObjectRef, template_data
from engine.evaluate.gotemplate import TemplateError, parse
from engine.evaluate.gotemplate.values import Struct
from tests.conftest import ROOT, require_corpus
from tests.unit.gotemplate_cases import CASES, SCENARIOS

SHARED_CORPUS = ROOT.parent / "shared" / "corpus"


def data(name: str) -> Struct:
    scenario: dict[str, Any] = SCENARIOS[name]
    changes = [MessageChange(c["File"], ObjectRef(c["APIVersion"], c["Kind"], c["Name"], c["Namespace"]),
                             c["Old"], c["New"], c["Setter"], c["Policy"], c["Image"])
               for c in scenario["Changes"]]
    return template_data(scenario["Namespace"], scenario["Name"], tuple(scenario["Values"].items()),
                         changes)


@pytest.mark.parametrize(("template", "scenario", "output", "error"), CASES,
                         ids=[f"case{i}" for i in range(len(CASES))])
def test_renders_as_go_does(template: str, scenario: str, output: str, error: str) -> None:
    if error:
        with pytest.raises(TemplateError) as caught:
            parse(template).execute(data(scenario))
        assert caught.value.message == error
    else:
        assert parse(template).execute(data(scenario)) == output


@pytest.mark.parametrize(("template", "line", "column"), [
    ("{{ .Foo }}", 1, 4),
    ("line one\n  {{ range .Changed.Changes }}{{ .Nope }}{{ end }}", 2, 34),
    ("{{ .Changed.Foo }}", 1, 12),
    ("a\n{{ if }}", 2, 7),
    ("{{ upper 3 }}", 1, 10),
    ("é {{ .Nope }}", 1, 6),
])
def test_errors_point_into_the_template(template: str, line: int, column: int) -> None:
    with pytest.raises(TemplateError) as caught:
        parse(template).execute(data("one"))
    assert (caught.value.line, caught.value.column) == (line, column)


def test_a_flux_function_gitward_lacks_is_refused_when_parsing() -> None:
    with pytest.raises(TemplateError) as caught:
        parse('{{ now | date "2006" }}')
    assert caught.value.message == 'template: commit message:1: function "now" not defined'
    with pytest.raises(TemplateError) as caught:
        parse("{{ bcrypt .Values.password }}")
    assert caught.value.message == ('template: commit message:1: function "bcrypt" is one of '
                                    "Flux's (sprig) template functions that gitward does not implement")


def test_a_recursive_template_stops_with_an_error() -> None:
    with pytest.raises(TemplateError, match="exceeded maximum template depth"):
        parse('{{ define "x" }}{{ template "x" . }}{{ end }}{{ template "x" . }}').execute(data("one"))


def test_the_data_is_not_changed_by_a_template() -> None:
    values = data("one")
    parse('{{ $m := dict "a" 1 }}{{ set $m "b" 2 }}{{ .Values.env }}').execute(values)
    assert parse("{{ .Values }}").execute(values) == "map[cluster:home env:prod]"


def corpus_templates() -> set[str]:
    """Every messageTemplate written in the shared corpora's ImageUpdateAutomations."""
    found: set[str] = set()
    for path in sorted(SHARED_CORPUS.rglob("*.y*ml")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "messageTemplate:" not in text or "kind: ImageUpdateAutomation" not in text:
            continue
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "ImageUpdateAutomation":
                template = (((doc.get("spec") or {}).get("git") or {}).get("commit") or {}).get("messageTemplate")
                if isinstance(template, str):
                    found.add(template)
    return found


def test_every_template_of_the_corpora_is_checked_against_go() -> None:
    require_corpus(SHARED_CORPUS.is_dir(), f"the shared corpora are absent ({SHARED_CORPUS})")
    templates = corpus_templates()
    assert len(templates) >= 4
    assert templates <= {template for template, _, _, _ in CASES}
