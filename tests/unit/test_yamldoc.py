"""YAML documents with positions, syntax errors located like a compiler's, typed reads."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from engine.errors import GitwardError, Problems, Severity, UserError
from engine.rules.yamldoc import Document, Struct, YamlSyntaxError, describe, load_documents, pos_of

BROKEN_SECOND_DOC = """\
apiVersion: v1
kind: ConfigMap
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web: broken
"""


def doc_of(text: str, path: str = "f.yaml") -> Document:
    docs = load_documents(path, text)
    assert len(docs) == 1
    return docs[0]


def top(text: str, known: tuple[str, ...], **kw: object) -> tuple[Struct, Problems]:
    problems = Problems()
    doc = doc_of(text)
    assert doc.node is not None
    return Struct(doc, problems, doc.node, "spec", known, **kw), problems  # type: ignore[arg-type]


def only(problems: Problems) -> tuple[str, int, int]:
    assert len(problems) == 1, [p.render(excerpt=False) for p in problems]
    p = problems.items[0]
    assert p.pos is not None
    return p.message, p.pos.line, p.pos.column


# -- documents and positions ------------------------------------------------------------------


def test_documents_are_numbered_and_empty_ones_have_no_node() -> None:
    docs = load_documents("m.yaml", "# generated\n---\na: 1\n---\n---\n~\n---\nb: [x]\n")
    assert [d.index for d in docs] == [0, 1, 2, 3]
    assert [d.node is None for d in docs] == [False, True, True, False]
    assert docs[3].number == 4


def test_comment_only_file_has_no_documents() -> None:
    assert load_documents("m.yaml", "# nothing here\n") == []


def test_pos_of_is_one_based_with_end_and_flux_syntax() -> None:
    doc = doc_of("spec:\n  url: https://example.com/x\n")
    assert isinstance(doc.node, yaml.MappingNode)
    spec = doc.node.value[0][1]
    value = spec.value[0][1]
    pos = pos_of(value, "f.yaml")
    assert (pos.line, pos.column, pos.end_line, pos.end_column) == (2, 8, 2, 29)
    assert pos.syntax == "flux"
    assert str(pos) == "f.yaml:2:8"


# -- syntax errors ----------------------------------------------------------------------------


def test_syntax_error_renders_like_a_compiler_with_document_number() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        load_documents("cluster/apps/x/deploy.yaml", BROKEN_SECOND_DOC)
    err = info.value
    assert isinstance(err, UserError) and err.exit_code == 2
    assert str(err) == "cluster/apps/x/deploy.yaml:7:12: error: document 2: mapping values are not allowed here"
    assert err.problem.pos is not None and (err.problem.pos.line, err.problem.pos.column) == (7, 12)


def test_unclosed_quote_points_at_end_and_hints_where_it_started() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        load_documents("q.yaml", 'a: 1\nb: "open\nc: 2\n')
    problem = info.value.problem
    assert problem.message == "document 1: found unexpected end of stream"
    assert problem.hint == "while scanning a quoted scalar at line 2, column 4"


def test_control_character_is_located() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        load_documents("c.yaml", "a: 1\nb: x\x01y\n")
    problem = info.value.problem
    assert problem.message.startswith("document 1: unacceptable character #x0001")
    assert problem.pos is not None and (problem.pos.line, problem.pos.column) == (2, 5)


def test_tab_indentation_is_a_located_error() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        load_documents("t.yaml", "a:\n\tb: 1\n")
    assert info.value.problem.pos is not None and info.value.problem.pos.line == 2


def test_undefined_alias_is_a_syntax_error() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        load_documents("u.yaml", "a: *nowhere\n")
    assert "found undefined alias" in info.value.problem.message


def test_nesting_beyond_the_parsers_limit_is_an_error_not_a_crash() -> None:
    depth = 5000
    with pytest.raises(GitwardError):
        load_documents("deep.yaml", "[" * depth + "]" * depth)


# -- values -----------------------------------------------------------------------------------


def test_yaml_1_1_resolution_as_kubernetes_reads_it() -> None:
    doc = doc_of("a: yes\nb: 1.10\nc: 010\nd: off\ne: '1.10'\n")
    assert doc.node is not None
    assert doc.to_python(doc.node) == {"a": True, "b": 1.1, "c": 8, "d": False, "e": "1.10"}


def test_invalid_timestamp_is_a_located_error() -> None:
    doc = doc_of("when: 2024-13-45\n")
    assert doc.node is not None
    with pytest.raises(YamlSyntaxError) as info:
        doc.to_python(doc.node)
    assert info.value.problem.message.startswith("document 1: invalid value:")


@pytest.mark.parametrize(
    "text, words",
    [
        ("{}", "a mapping"), ("[]", "a list"), ("x", "a string"), ("1", "an integer"),
        ("1.5", "a number"), ("true", "a boolean"), ("~", "null"), ("2024-01-02", "a timestamp"),
        ("!custom x", "a value tagged !custom"),
    ],
)
def test_describe_names_what_a_node_holds(text: str, words: str) -> None:
    node = yaml.compose(text)
    assert describe(node) == words


def test_merge_keys_apply_with_explicit_keys_winning() -> None:
    doc = doc_of("base: &b {interval: 1m, path: ./a}\nspec:\n  <<: *b\n  path: ./mine\n")
    assert isinstance(doc.node, yaml.MappingNode)
    spec = doc.node.value[1][1]
    pairs = {k.value: v.value for k, v in doc.pairs(spec)}
    assert pairs == {"interval": "1m", "path": "./mine"}


def test_merge_of_a_scalar_is_an_error() -> None:
    struct, problems = top("<<: 3\nurl: x\n", ("url",))
    assert struct.broken
    message, line, col = only(problems)
    assert (message, line, col) == ("document 1: a merge key (<<) takes a mapping, got an integer", 1, 5)


# -- Struct -----------------------------------------------------------------------------------


def test_struct_reads_typed_fields() -> None:
    struct, problems = top(
        "url: https://x\nsuspend: true\ninterval: 1m30s\nlabels: {a: b, c: }\nitems: [x, y]\n",
        ("url", "suspend", "interval", "labels", "items"),
    )
    assert struct.string("url") == "https://x"
    assert struct.boolean("suspend") is True
    assert struct.duration("interval") == timedelta(minutes=1, seconds=30)
    assert struct.str_map("labels") == (("a", "b"), ("c", ""))
    assert struct.str_list("items") == ("x", "y")
    assert struct.string("absent") is None
    assert len(problems) == 0


def test_wrong_type_is_located_at_the_value_with_a_quote_hint() -> None:
    struct, problems = top("branch: 2024\n", ("branch",))
    assert struct.string("branch") is None
    assert only(problems) == ("spec.branch: expected a string, got an integer", 1, 9)
    assert problems.items[0].hint == 'quote it: "2024"'


def test_boolean_given_as_string_is_an_error() -> None:
    struct, problems = top("prune: 'true'\n", ("prune",))
    assert struct.boolean("prune") is None
    assert only(problems) == ("spec.prune: expected true or false, got a string", 1, 8)


def test_unknown_field_suggests_the_close_one() -> None:
    _, problems = top("intervall: 1m\n", ("interval", "timeout"))
    assert only(problems) == ('unknown field "intervall" in spec (did you mean "interval"?)', 1, 1)


def test_duplicate_field_is_an_error_at_the_second() -> None:
    struct, problems = top("path: a\npath: b\n", ("path",))
    assert struct.string("path") == "a"
    assert only(problems) == ('spec.path: duplicate field "path"', 2, 1)


def test_ignored_field_is_a_warning_and_unavailable_one_an_error() -> None:
    struct, problems = top(
        "verify: {mode: HEAD}\nsuspend: true\n", ("suspend",),
        ignored={"verify": "not checked"}, unavailable={"suspend": "not in v1beta1"},
    )
    assert struct.boolean("suspend") is None
    found = sorted((p.severity, p.message) for p in problems)
    assert found == [
        (Severity.ERROR, "spec.suspend: not in v1beta1"),
        (Severity.WARNING, "spec.verify is ignored by gitward (not checked)"),
    ]


def test_required_field_is_reported_at_the_mapping() -> None:
    doc = doc_of("spec:\n  path: x\n")
    assert isinstance(doc.node, yaml.MappingNode)
    problems = Problems()
    outer = Struct(doc, problems, doc.node, "", ("spec",))
    spec = outer.struct("spec", ("path", "interval"))
    assert spec is not None
    assert spec.duration("interval", required=True) is None
    assert only(problems) == ("spec.interval is required", 1, 1)


def test_null_counts_as_absent() -> None:
    struct, problems = top("interval:\n", ("interval",))
    struct.require("interval")
    assert only(problems)[0] == "spec.interval is required"


def test_non_mapping_struct_is_one_error_then_quiet() -> None:
    doc = doc_of("spec: [1, 2]\n")
    assert isinstance(doc.node, yaml.MappingNode)
    problems = Problems()
    spec = Struct(doc, problems, doc.node, "", ("spec",)).struct("spec", ("url",), required=True)
    assert spec is not None and spec.broken
    spec.require("url")
    assert spec.string("url") is None
    assert only(problems) == ("spec: expected a mapping, got a list", 1, 7)


def test_duration_without_hours_for_timeouts() -> None:
    struct, problems = top("timeout: 1h\n", ("timeout",))
    assert struct.duration("timeout", hours=False) is None
    assert only(problems)[0] == 'spec.timeout: invalid duration "1h": this field takes no hours (h); write it in minutes'


def test_enum_suggests_and_defaults() -> None:
    struct, problems = top("kind: Secrets\n", ("kind", "order"))
    assert struct.enum("kind", ("ConfigMap", "Secret")) is None
    assert struct.enum("order", ("asc", "desc"), "asc") == "asc"
    assert only(problems)[0] == 'spec.kind: must be one of ConfigMap, Secret, got "Secrets" (did you mean "Secret"?)'


def test_non_string_field_name_is_an_error() -> None:
    _, problems = top("1: x\n", ())
    assert only(problems) == ("spec: field names must be strings, got an integer", 1, 1)


def test_list_items_carry_their_index() -> None:
    struct, problems = top("items: [a, {b: c}]\n", ("items",))
    assert struct.str_list("items") == ("a",)
    assert only(problems) == ("spec.items[1]: expected a string, got a mapping", 1, 12)
