"""The DSL's `flux` field: a Flux field gitward does not model, as its path and its YAML.

    kustomization apps {
      source git flux-system
      prune true
      flux spec.deletionPolicy "Delete"
      flux spec.decryption "{provider: sops, secretRef: {name: sops-age}}"
    }

(the printer writes a mapping or a list as block YAML in a triple-quoted string).
`read_flux_field` reads one (the value is YAML, read as a manifest's); `value_text` prints a
value as the plainest YAML that reads back to it. `check_flux_fields` accepts a statement's
`flux` fields only when Flux's reader, given the object gitward writes for the statement, keeps
each of them as written: a field of the statement's kind and API version that gitward does not
model. Flux's warnings about a field (`spec.decryption is ignored by gitward`) are reported at
its `flux` line, as they would be in the manifest.
"""

from __future__ import annotations

import dataclasses
from typing import Union

import yaml

from engine.errors import Problem, Problems, Severity, SourcePos
from engine.model import FluxField, GitSource, ImagePolicy, ImageRepository, ImageUpdate, Kustomization, OCISource
from engine.rules.fluxapi import NOT_KEPT
from engine.rules.fluxfields import PATH, carried, under, value_of
from engine.rules.fluxread import read_flux
from engine.rules.fluxwrite import dump_value, write_flux
from engine.rules.syntax import Invalid
from engine.rules.yamldoc import YamlSyntaxError, load_documents

FluxRule = Union[GitSource, OCISource, Kustomization, ImageRepository, ImagePolicy, ImageUpdate]
FLUX_RULES = (GitSource, OCISource, Kustomization, ImageRepository, ImagePolicy, ImageUpdate)
"""The rules Flux has a kind for, which carry `flux_fields`."""

_API_VERSION = "apiVersion"
_WIDE = 2**16
"""No line folding: a long value stays on its line."""


def read_flux_field(path: str, path_pos: SourcePos, text: str, text_pos: SourcePos) -> FluxField:
    """`flux PATH "YAML"`: the field, placed at its path (raises a located Invalid)."""
    if not PATH.fullmatch(path):
        raise Invalid(f"flux expects a field path such as spec.decryption, not '{path}'", path_pos,
                      "keys joined by '.', list items as [0]: spec.dependsOn[0].readyExpr", "dsl-value")
    try:
        docs = load_documents(text_pos.path, text)
        data = docs[0].to_json(docs[0].node) if len(docs) == 1 and docs[0].node is not None else None
    except YamlSyntaxError as err:
        where = err.problem.pos
        line = f" (line {where.line} of the value)" if where is not None and where.line else ""
        message = err.problem.message.removeprefix("document 1: ")
        raise Invalid(f"the value of flux {path} is not YAML{line}: {message}", text_pos) from None
    if data is None:
        raise Invalid(f"flux {path} expects one YAML value, not {'nothing' if not docs else 'several'}",
                      text_pos, 'write: flux spec.deletionPolicy "Delete"')
    return carried(path, data, path_pos)


def value_text(field: FluxField) -> str:
    """The YAML a `flux` field prints: block YAML for a mapping or a list, a scalar on one line
    (plain where YAML reads it back unchanged); double-quoted and escaped when that is the only
    form that reads back."""
    data = value_of(field)
    text = dump_value(data, width=_WIDE).removesuffix("...\n")
    if text.count("\n") == 1:
        text = text.removesuffix("\n")
    if _reads_back(text, data):
        return text
    return str(yaml.dump(data, Dumper=yaml.SafeDumper, default_style='"', default_flow_style=True,
                         allow_unicode=False, width=_WIDE)).removesuffix("\n")


def _reads_back(text: str, data: object) -> bool:
    try:
        docs = load_documents("", text)
    except YamlSyntaxError:
        return False
    return len(docs) == 1 and docs[0].node is not None and docs[0].to_json(docs[0].node) == data


def check_flux_fields(rule: FluxRule, problems: Problems, what: str) -> FluxRule | None:
    """`rule` with its flux fields in canonical (path) order, or None when one cannot be kept
    (each such field is a located error in `problems`; Flux's warnings about them are too)."""
    fields = sorted(rule.flux_fields, key=lambda f: f.path)
    inner = set()
    for i, field in enumerate(fields):
        outer = next((f for f in fields[:i] if under(field.path, f.path)), None)
        if outer is not None:
            inner.add(i)
            problems.error(_overlap(field, outer), field.origin, code="dsl-duplicate")
    failed = bool(inner)
    ordered = dataclasses.replace(rule, flux_fields=tuple(fields))
    version = [f for f in fields if f.path == _API_VERSION][:1]
    baseline = _reread(dataclasses.replace(rule, flux_fields=()), what)[1]
    broken = any(p.severity is Severity.ERROR for p in baseline.values())
    for i, field in enumerate(fields):
        if field.path != _API_VERSION and i not in inner:
            failed |= not _check(dataclasses.replace(rule, flux_fields=(*version, field)), field, baseline,
                                 broken, problems, what)
    if not failed and not broken and version and not _kept(_reread(ordered, what)[0], version[0]):
        failed = True
        problems.error(f"flux {_API_VERSION}: gitward keeps the apiVersion of a beta API only beside a "
                       "field that v1 removed; without one, the object is written as v1",
                       version[0].origin, code="dsl-value")
    return None if failed else ordered


def _check(rule: FluxRule, field: FluxField, baseline: dict[str, Problem], broken: bool,
           problems: Problems, what: str) -> bool:
    """Whether Flux's reader keeps `field` of `rule`; what it says about the field is reported at
    the `flux` line. When the rule is `broken` as Flux YAML without its flux fields (a value the
    DSL admits and Flux refuses), the reader skips the object: only what it says about the
    field is known."""
    back, found = _reread(rule, what)
    said = [p for message, p in found.items() if message not in baseline]
    for problem in said:
        problems.items.append(Problem(problem.severity, f"flux {field.path}: {problem.message}", field.origin,
                                      problem.code, problem.hint))
    if any(p.severity is Severity.ERROR for p in said):
        return False
    if broken or _kept(back, field):
        return True
    if any(p.code == NOT_KEPT for p in said):
        problems.error(f"flux {field.path}: gitward cannot keep this field", field.origin, code="dsl-value")
    else:
        problems.error(f"flux {field.path}: gitward models this field: write it with its keyword "
                       "(docs/dsl.md), not as a flux field", field.origin, code="dsl-value")
    return False


def _overlap(field: FluxField, first: FluxField) -> str:
    at = f" (at {first.origin.line}:{first.origin.column})" if first.origin else ""
    if field.path == first.path:
        return f"flux {field.path} given twice{at}"
    return f"flux {field.path} is inside flux {first.path}{at}: give one of them"


def _reread(rule: FluxRule, what: str) -> tuple[FluxRule | None, dict[str, Problem]]:
    """The rule as Flux's reader takes back what gitward writes for it, and what it says."""
    scratch = Problems()
    back = read_flux(f"({what} as Flux YAML)", write_flux([rule]), scratch)
    found = back[0] if len(back) == 1 and isinstance(back[0], type(rule)) else None
    return found, {p.message: p for p in scratch.items}


def _kept(back: FluxRule | None, field: FluxField) -> bool:
    return back is not None and any((f.path, f.value) == (field.path, field.value) for f in back.flux_fields)
