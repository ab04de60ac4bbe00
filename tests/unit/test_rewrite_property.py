"""Marker rewrites on generated YAML: only the marked values change, and YAML reads the result as
the original structure with those values replaced; a second run changes nothing.

The generator writes block mappings and sequences of string scalars in every flow style
(plain, single- and double-quoted), marks some of them with a line comment or a comment line
above, and sprinkles other comments, blank lines, CRLF and a BOM. YAML itself (libyaml and
PyYAML's pure reader) is the oracle, never the module under test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Union

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate.rewrite import Edit, MarkedValue, apply_edits, locate, render_scalar
from engine.evaluate.yamlscalars import ScalarStyle
from engine.model import MarkerDialect
from engine.rules.markers import MarkerPart, MarkerRef

FLUX = MarkerDialect("flux", ("*.yaml",))
LOADERS = (getattr(yaml, "CSafeLoader", yaml.SafeLoader), yaml.SafeLoader)

# Characters an original scalar may hold (no line breaks: YAML folds them in quoted scalars).
ORIGINAL_CHARS = st.characters(
    exclude_categories=["Cs", "Cc", "Zl", "Zp"], exclude_characters="\ufeff\x85"
)
# A new value may hold anything a string can, line breaks and control characters included.
NEW_CHARS = st.characters(exclude_categories=["Cs"])
ORIGINAL_TRICKY = [
    "1.10", "2", "010", "true", "on", "No", "y", "null", "~", "", "1e3", "0x1f", ".inf", "<<",
    "2024-01-31", "a: b", "a #b", "- a", "? a", ": a", "#a", "*a", "&a", "!a", "|", ">", "@a",
    "'q'", '"q"', " lead", "trail ", "it's", "back\\slash", "---", "...", "x:", "tab\there",
    "ghcr.io/org/app:1.10", f"app@sha256:{'f' * 64}", "localhost:5000/a/b:1",
]
TRICKY = [*ORIGINAL_TRICKY, "line\nbreak", "nel\x85", "\ufeffbom", "bell\x07", "!!", "!!str x", "!tag"]
KEYS = st.from_regex(r"k[a-z0-9_]{0,6}", fullmatch=True)


@dataclass(frozen=True)
class Leaf:
    value: str
    style: ScalarStyle
    mark: str  # "", "line" or "above"
    note: bool  # an unrelated comment after the value


Tree = Union[Leaf, dict[str, "Tree"], list["Tree"]]

leaves = st.builds(
    Leaf,
    value=st.one_of(st.sampled_from(ORIGINAL_TRICKY), st.text(ORIGINAL_CHARS, max_size=12)),
    style=st.sampled_from([ScalarStyle.PLAIN, ScalarStyle.SINGLE, ScalarStyle.DOUBLE]),
    mark=st.sampled_from(["", "", "line", "above"]),
    note=st.booleans(),
)


def _trees(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    return st.one_of(
        st.dictionaries(KEYS, children, min_size=1, max_size=4),
        st.lists(children, min_size=1, max_size=4),
    )


trees = st.recursive(leaves, _trees, max_leaves=12)
documents = st.dictionaries(KEYS, trees, min_size=1, max_size=4)


def _plain_reads_back(value: str) -> bool:
    try:
        return all(yaml.load(f"k: {value} # c", Loader=loader) == {"k": value} for loader in LOADERS)
    except yaml.YAMLError:
        return False


def _token(leaf: Leaf) -> str:
    if leaf.style is ScalarStyle.PLAIN and _plain_reads_back(leaf.value):
        return leaf.value
    if leaf.style is ScalarStyle.SINGLE:
        return "'" + leaf.value.replace("'", "''") + "'"
    return json.dumps(leaf.value, ensure_ascii=False)


class Writer:
    """Block-style YAML for a tree; marked leaves are numbered in text order."""

    def __init__(self, blank_every: int) -> None:
        self.lines: list[str] = []
        self.marked: list[Leaf] = []
        self.blank_every = blank_every

    def line(self, text: str, glued: bool = False) -> None:
        if not glued and self.blank_every and len(self.lines) % self.blank_every == self.blank_every - 1:
            self.lines.append("")
        self.lines.append(text)

    def leaf(self, indent: int, head: str, leaf: Leaf) -> None:
        text = head + _token(leaf)
        comment = ""
        if leaf.mark:
            comment = '# {"$imagepolicy": "apps:p%d:tag"}' % len(self.marked)
            self.marked.append(leaf)
        if leaf.mark == "above":
            self.line(" " * indent + comment)
        if leaf.mark == "line":
            text += " " + comment
        elif leaf.note:
            text += "  # note: not a marker"
        self.line(text, glued=leaf.mark == "above")

    def node(self, indent: int, dash: str, key: str | None, tree: Tree) -> None:
        """`tree` on a line that starts at `indent` with `dash` ("", "- ", "- - "...) and `key: `."""
        head = " " * indent + dash + (f"{key}: " if key is not None else "")
        column = indent + len(dash)  # where the key (or a keyless item's value) starts
        if isinstance(tree, Leaf):
            self.leaf(indent, head, tree)
        elif key is not None:
            self.line(head.rstrip())
            if isinstance(tree, dict):
                for k, v in tree.items():
                    self.node(column + 2, "", k, v)
            else:
                for item in tree:
                    self.node(column + 2, "- ", None, item)
        elif isinstance(tree, dict):  # a mapping item: its first key on the item's line
            (k0, v0), *rest = tree.items()
            self.node(indent, dash, k0, v0)
            for k, v in rest:
                self.node(column, "", k, v)
        else:  # a list item: `- - x`
            first, *others = tree
            self.node(indent, dash + "- ", None, first)
            for item in others:
                self.node(column, "- ", None, item)


def _plain(tree: Tree) -> object:
    if isinstance(tree, Leaf):
        return tree.value
    if isinstance(tree, dict):
        return {k: _plain(v) for k, v in tree.items()}
    return [_plain(v) for v in tree]


def _replaced(tree: Tree, new: dict[int, str], counter: list[int]) -> object:
    """The plain structure with the n-th marked leaf (in text order) replaced by new[n]."""
    if isinstance(tree, Leaf):
        if not tree.mark:
            return tree.value
        counter[0] += 1
        return new[counter[0] - 1]
    if isinstance(tree, dict):
        return {k: _replaced(v, new, counter) for k, v in tree.items()}
    return [_replaced(v, new, counter) for v in tree]


def _outside(text: str, values: tuple[MarkedValue, ...]) -> list[str]:
    """The text between the marked values."""
    parts, at = [], 0
    for v in values:
        parts.append(text[at : v.start])
        at = v.end
    return parts + [text[at:]]


def _load(text: str) -> list[list[object]]:
    return [list(yaml.load_all(text, Loader=loader)) for loader in LOADERS]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(documents, min_size=1, max_size=3),
    new_values=st.lists(st.one_of(st.sampled_from(TRICKY), st.text(NEW_CHARS, max_size=12)), min_size=40, max_size=40),
    blank_every=st.integers(0, 5),
    crlf=st.booleans(),
    bom=st.booleans(),
    closing=st.booleans(),
)
def test_rewrite_changes_only_marked_values(
    docs: list[dict[str, Tree]], new_values: list[str], blank_every: int, crlf: bool, bom: bool, closing: bool
) -> None:
    writer = Writer(blank_every)
    for i, doc in enumerate(docs):
        if i:
            writer.line("---")
        for key, tree in doc.items():
            writer.node(0, "", key, tree)
    if closing:
        writer.line("...")
    newline = "\r\n" if crlf else "\n"
    text = ("\ufeff" if bom else "") + newline.join(writer.lines) + newline
    assert _load(text) == [[_plain(d) for d in docs]] * 2, text

    scan = locate("gen.yaml", text, FLUX)
    assert scan.warnings == ()
    assert [v.value for v in scan.values] == [leaf.value for leaf in writer.marked]
    assert [v.marker.policy_name for v in scan.values] == [f"p{i}" for i in range(len(writer.marked))]

    new = {i: new_values[i % len(new_values)] for i in range(len(writer.marked))}
    edits = [Edit(v, new[int(v.marker.policy_name[1:])]) for v in scan.values]
    result = apply_edits(text, edits)

    counter = [0]
    expected = [_replaced(d, new, counter) for d in docs]
    assert _load(result) == [expected] * 2, result

    again = locate("gen.yaml", result, FLUX)
    assert again.warnings == ()
    assert [v.value for v in again.values] == [new[i] for i in range(len(writer.marked))]
    assert _outside(result, again.values) == _outside(text, scan.values)
    assert apply_edits(result, [Edit(v, new[int(v.marker.policy_name[1:])]) for v in again.values]) == result


def _value(style: ScalarStyle) -> MarkedValue:
    marker = MarkerRef("f.yaml", 1, 1, "apps", "app", MarkerPart.TAG, "flux")
    return MarkedValue(marker, 1, 1, 0, 0, "", style.value)


CONTEXTS = [
    ("k: {} # c", lambda data: data["k"]),
    ("- {}", lambda data: data[0]),
    ("a:\n  - k: {}\n    j: x", lambda data: data["a"][0]["k"]),
    ("a: &x {}\nb: *x", lambda data: data["b"]),
]


@settings(max_examples=500, deadline=None)
@given(
    new=st.one_of(st.sampled_from(TRICKY), st.text(NEW_CHARS, max_size=16)),
    style=st.sampled_from([ScalarStyle.PLAIN, ScalarStyle.SINGLE, ScalarStyle.DOUBLE]),
    context=st.sampled_from(CONTEXTS),
)
def test_rendered_scalar_reads_back_as_the_string(
    new: str, style: ScalarStyle, context: tuple[str, Callable[[Any], object]]
) -> None:
    written = render_scalar(_value(style), new)
    assert not written.startswith("!"), "never a tagged node: a tag could make it another type"
    if style is ScalarStyle.PLAIN:
        assert written == new or written.startswith('"')
    if style is ScalarStyle.SINGLE:
        assert written.startswith("'") or written.startswith('"')
    template, read = context
    for loader in LOADERS:
        assert read(yaml.load(template.format(written), Loader=loader)) == new
