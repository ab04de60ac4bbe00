"""The `*.rules` reader: syntax.py gives the generic shape, this schema pass builds the model.

The keyword tables (dslschema.py) know which keywords each statement takes and what their values
mean, so an unknown keyword gets a did-you-mean and a bad value a typed, located message. Every
problem goes to the caller's `Problems`; bad input never raises. The language is documented in
docs/dsl.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import Problems, SourcePos, did_you_mean
from engine.model import DEFAULT_NAMESPACE, Rule
from engine.rules.dslfield import Merge, Spec, Values, check_name, one_of, split_ref
from engine.rules.dslflux import FLUX_RULES, check_flux_fields
from engine.rules.dslschema import KINDS as _KINDS
from engine.rules.dslschema import kind_of
from engine.rules.fluxread import with_ignored
from engine.rules.syntax import (
    Block,
    Field,
    Invalid,
    Statement,
    Value,
    decode_literal,
    read_statements,
)

__all__ = ["decode_literal", "parse_rules"]


def parse_rules(path: str, text: str, problems: Problems) -> list[Rule]:
    """Read one rules file; report every problem to `problems` and return the valid rules.

    A syntax error stops the file at the first one (the rest cannot be trusted); a statement
    with a bad field is reported and left out, the others are still returned.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    try:
        statements = read_statements(path, text)
    except Invalid as bad:
        problems.error(bad.message, bad.pos, code=bad.code, hint=bad.hint)
        return []
    reader = _Reader(problems)
    return [rule for statement in statements if (rule := reader.statement(statement)) is not None]


def _pairs(line: Field) -> list[Field]:
    """Split `kind "Deployment" name "x"` into one field per keyword (nested blocks only)."""
    groups: list[list[Value]] = [[]]
    for value in line.values:
        if groups[-1] and not value.quoted and groups[-1][-1].quoted:
            groups.append([])
        groups[-1].append(value)
    fields = [Field(tuple(group), None) for group in groups]
    fields[-1] = Field(fields[-1].values, line.block)
    return fields


class _Reader:
    """Builds model objects from the tree; counts the errors it reports."""

    def __init__(self, problems: Problems):
        self.problems = problems
        self.errors = 0

    def report(self, bad: Invalid) -> None:
        self.errors += 1
        self.problems.error(bad.message, bad.pos, code=bad.code, hint=bad.hint)

    def statement(self, statement: Statement) -> Rule | None:
        """The statement's rule, keeping the warnings about fields gitward does not act on."""
        before = len(self.problems.items)
        return with_ignored(self._statement(statement), self.problems.items[before:])

    def _statement(self, statement: Statement) -> Rule | None:
        errors = self.errors
        for bad in statement.bad_literals:
            self.report(bad)
        header, block = statement.header, statement.block
        try:
            kind, name = kind_of(header)
            if kind.namespaced:
                namespace, rule_name = split_ref(name)
            elif "/" in name.text:
                article = "an" if kind.label[0] in "aeiou" else "a"
                raise Invalid(f"{article} {kind.label} has no namespace: {name.shown()}", name.pos, code="dsl-name")
            else:
                namespace, rule_name = "", name.text
                check_name(rule_name, name.pos)
        except Invalid as bad:
            self.report(bad)
            return None
        what = f"{kind.label} {name.text}"
        attrs, given = self.fields(block, kind.fields, what)
        for required, example in kind.required.items():
            choices = required.split("|")
            if given.isdisjoint(choices):
                field = one_of([f"'{c}'" for c in choices])
                hint = f"add: {example}"
                self.report(Invalid(f"{what}: missing required field {field}", name.pos, hint, "dsl-missing"))
        if self.errors > errors:
            return None
        if kind.namespaced:
            attrs["namespace"] = namespace or DEFAULT_NAMESPACE
        rule = kind.build(name=rule_name, origin=name.pos, **attrs)
        if isinstance(rule, FLUX_RULES) and rule.flux_fields:
            checked = check_flux_fields(rule, self.problems, what)
            self.errors += checked is None
            return checked
        return rule

    def fields(
        self, block: Block, specs: Mapping[str, Spec], what: str, pairs: bool = False
    ) -> tuple[dict[str, Any], set[str]]:
        """Model attributes from a block's fields, and the keywords given (valid or not)."""
        found: dict[str, Any] = {}
        first: dict[str, SourcePos] = {}
        given: set[str] = set()
        for line in block.fields:
            for one in _pairs(line) if pairs else [line]:
                try:
                    self._field(one, specs, what, found, first, given)
                except Invalid as bad:
                    self.report(bad)
        parts = {spec.attr: spec.parts for spec in specs.values() if spec.parts is not None}
        return {attr: _frozen(value, parts.get(attr)) for attr, value in found.items()}, given

    def _field(
        self,
        line: Field,
        specs: Mapping[str, Spec],
        what: str,
        found: dict[str, Any],
        first: dict[str, SourcePos],
        given: set[str],
    ) -> None:
        keyword = line.values[0]
        if keyword.quoted:
            given.add(keyword.text)  # reported here, so not again as missing
            raise Invalid(f"expected a keyword, not the string {keyword.shown()}", keyword.pos, code="dsl-keyword")
        spec = specs.get(keyword.text)
        if spec is None:
            raise _unknown_keyword(keyword, specs, what)
        given.add(keyword.text)
        if spec.merge is Merge.ONCE and spec.attr in first:
            sharing = [k for k, s in specs.items() if s.attr == spec.attr]
            if len(sharing) > 1:
                where = first[spec.attr]
                message = f"only one of {one_of(sharing)} may be given (first at {where.line}:{where.column})"
                raise Invalid(message, keyword.pos, code="dsl-duplicate")
            raise _given_twice(keyword.text, keyword.pos, first[spec.attr])
        if line.block is not None and not spec.block:
            raise Invalid(f"{keyword.text} takes no {{ }} block", line.block.pos, code="dsl-syntax")
        values = Values(self, keyword, line, specs.keys())
        value = spec.read(values)
        values.end()
        if spec.merge is Merge.ONCE:
            found[spec.attr] = value
            first[spec.attr] = keyword.pos
        elif spec.merge is Merge.APPEND:
            found.setdefault(spec.attr, []).append(value)
        elif spec.merge is Merge.EXTEND:
            empty = f"{keyword.text} none"
            if empty in first or (value is None and spec.attr in found):
                message = f"'{empty}' cannot be combined with other {keyword.text} lines"
                raise Invalid(message, keyword.pos, code="dsl-duplicate")
            if value is None:
                first[empty] = keyword.pos
            found.setdefault(spec.attr, []).extend(value or ())
        else:
            label, ref_field, text = value
            if label in first:
                raise _given_twice(label, keyword.pos, first[label])
            first[label] = keyword.pos
            found.setdefault(spec.attr, {})[ref_field] = text


def _frozen(value: Any, parts: Callable[..., Any] | None) -> Any:
    """Lists become tuples and gathered reference parts the object they make (a GitRef)."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict) and parts is not None:
        return parts(**value)
    return value


def _given_twice(label: str, pos: SourcePos, first: SourcePos) -> Invalid:
    return Invalid(f"'{label}' given twice (first at {first.line}:{first.column})", pos, code="dsl-duplicate")


def _unknown_keyword(keyword: Value, specs: Mapping[str, Spec], what: str) -> Invalid:
    suggestion = did_you_mean(keyword.text, specs)
    message = f"unknown keyword '{keyword.text}' in {what}{suggestion}"
    owners = [kind.label for kind in _KINDS if keyword.text in kind.fields]
    hint = f"'{keyword.text}' is a field of {one_of(owners)}" if owners and not suggestion else ""
    return Invalid(message, keyword.pos, hint, "dsl-keyword")
