"""Strategic merge and JSON 6902 as kustomize v5.5 applies them to kinds without a schema.

Every expectation below was taken from `kubectl kustomize` (kustomize v5.5.0) on the same
input; tests/integration/test_kustomize_equivalence.py keeps the whole build honest against it.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.evaluate import kubeyaml
from engine.evaluate.patch import DELETED, PatchError, apply_json_patch, merge_object

HEAD = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: hr\n"


def obj(spec: str, head: str = HEAD) -> dict[str, Any]:
    value = kubeyaml.read_documents("test", head + ("spec:\n" + spec if spec else ""))[0].value
    assert isinstance(value, dict)
    return value


def spec_of(result: object) -> object:
    assert isinstance(result, dict)
    return result.get("spec")


def indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


MERGES = [
    # (case, target spec, patch spec, expected spec)
    ("maps merge key by key", "a: 1\nm: {x: 1}", "b: 2\nm: {y: 2}", {"a": 1, "b": 2, "m": {"x": 1, "y": 2}}),
    ("a null deletes the key", "a: 1\nb: 2", "a: null", {"b": 2}),
    ("lists with name keys are replaced, not merged",
     "list: [{name: a, v: 1}, {name: b}]", "list: [{name: a, v: 2}, {name: c}]",
     {"list": [{"name": "a", "v": 2}, {"name": "c"}]}),
    ("directives inside list items stay as written",
     "list: [{name: a}]", "list: [{name: a, $patch: delete}]", {"list": [{"name": "a", "$patch": "delete"}]}),
    ("an empty list replaces", "l: [1]", "l: []", {"l": []}),
    ("an empty map merges nothing", "m: {a: 1}", "m: {}", {"m": {"a": 1}}),
    ("$patch: replace replaces a map", "m: {a: 1, b: 2}", "m: {$patch: replace, z: 1}", {"m": {"z": 1}}),
    ("$patch: delete removes a map", "m: {a: 1}\nk: 1", "m: {$patch: delete}", {"k": 1}),
    ("$patch: merge is the default", "m: {a: 1}", "m: {$patch: merge, b: 2}", {"m": {"a": 1, "b": 2}}),
    ("other directives are ordinary keys", "k: 1",
     "$retainKeys: [k]\n$setElementOrder/l: [{name: y}]\n$deleteFromPrimitiveList/p: [b]",
     {"k": 1, "$retainKeys": ["k"], "$setElementOrder/l": [{"name": "y"}], "$deleteFromPrimitiveList/p": ["b"]}),
    ("a new map loses its nulls and resolves its directives", "y: 1",
     "n: {a: 1, b: null, c: {d: null, e: 2}, f: [1, null], g: {}, h: []}\n"
     "r: {$patch: replace, x: 1}\nd: {$patch: delete}\nnothing: null",
     {"y": 1, "n": {"a": 1, "c": {"e": 2}, "f": [1, None], "g": {}, "h": []}, "r": {"x": 1}}),
    ("a null target counts as absent", "x: null\nz:\nl: null", "x: {a: 1}\nz: {b: null, c: 1}\nl: 3",
     {"x": {"a": 1}, "z": {"c": 1}, "l": 3}),
    ("a map of nulls leaves an empty map", "q: 1", "g: {a: null}\nh: {a: {b: null}}",
     {"q": 1, "g": {}, "h": {"a": {}}}),
    ("a replaced map is resolved too", "m: {a: 1, q: {z: 1}}",
     "m: {$patch: replace, x: null, y: {$patch: delete}, w: {v: null}, q: {k: 1}}",
     {"m": {"w": {}, "q": {"k": 1}}}),
    ("an unknown strategy on a new map is kept as written", "a: 1", "m: {$patch: foo}",
     {"a": 1, "m": {"$patch": "foo"}}),
    ("scalars replace, whatever their type", "a: x\nb: 1", "a: 5\nb: 'y'", {"a": 5, "b": "y"}),
]


@pytest.mark.parametrize(("case", "target", "patch", "expected"), MERGES, ids=[m[0] for m in MERGES])
def test_strategic_merge(case: str, target: str, patch: str, expected: object) -> None:
    assert spec_of(merge_object(obj(indent(target)), obj(indent(patch)))) == expected


REFUSED_MERGES = [
    ("map onto list", "x: [1]", "x: {a: 1}", "expected SequenceNode but got MappingNode"),
    ("list onto map", "x: {a: 1}", "x: [1]", "expected MappingNode but got SequenceNode"),
    ("map onto scalar", "x: 5", "x: {a: 1}", "expected ScalarNode but got MappingNode"),
    ("scalar onto map", "x: {a: 1}", "x: 3", "expected MappingNode but got ScalarNode"),
    ("scalar onto list", "x: [1]", "x: 3", "expected SequenceNode but got ScalarNode"),
    ("delete onto a scalar", "m: 5", "m: {$patch: delete}", "expected ScalarNode but got MappingNode"),
    ("unknown strategy", "m: {a: 1}", "m: {$patch: foo}", "unknown patch strategy 'foo'"),
    ("a number is no strategy", "m: {a: 1}", "m: {$patch: 1}", "unknown patch strategy '1'"),
]


@pytest.mark.parametrize(("case", "target", "patch", "message"), REFUSED_MERGES,
                         ids=[m[0] for m in REFUSED_MERGES])
def test_strategic_merge_refuses(case: str, target: str, patch: str, message: str) -> None:
    with pytest.raises(PatchError, match=message.replace("$", r"\$")):
        merge_object(obj(indent(target)), obj(indent(patch)))


def test_whole_object_directives() -> None:
    target = obj("  a: 1\n")
    assert merge_object(target, obj("", HEAD + "$patch: delete\n")) is DELETED
    # kyaml builds a replacement that kustomize never takes: the object stays as it was
    assert merge_object(target, obj("  n: 1\n", HEAD + "$patch: replace\n")) == target


def test_merge_never_mutates_its_inputs() -> None:
    target, patch = obj("  m: {a: 1}\n  l: [1]\n"), obj("  m: {b: 2}\n  l: [2]\n")
    before = (repr(target), repr(patch))
    merge_object(target, patch)
    assert (repr(target), repr(patch)) == before


SPEC = "  m: {a: 1}\n  l: [1, 2]\n"

JSON_PATCHES = [
    # (case, operations (YAML), expected spec)
    ("replace of a missing map key adds it", "- {op: replace, path: /spec/m/b, value: 1}",
     {"m": {"a": 1, "b": 1}, "l": [1, 2]}),
    ("add at the end by index", "- {op: add, path: /spec/l/2, value: 9}", {"m": {"a": 1}, "l": [1, 2, 9]}),
    ("a negative index counts from the end", "- {op: add, path: /spec/l/-1, value: 9}",
     {"m": {"a": 1}, "l": [1, 2, 9]}),
    ("remove by negative index", "- {op: remove, path: /spec/l/-1}", {"m": {"a": 1}, "l": [1]}),
    ("an index may have a leading zero", "- {op: add, path: /spec/l/01, value: 9}",
     {"m": {"a": 1}, "l": [1, 9, 2]}),
    ("append with -", "- {op: add, path: /spec/l/-, value: 3}", {"m": {"a": 1}, "l": [1, 2, 3]}),
    ("a trailing slash names the empty key", "- {op: add, path: /spec/m/, value: 1}",
     {"m": {"a": 1, "": 1}, "l": [1, 2]}),
    ("copy from a missing key copies null", "- {op: copy, from: /spec/zz, path: /spec/yy}",
     {"m": {"a": 1}, "l": [1, 2], "yy": None}),
    ("add without a value adds null", "- {op: add, path: /spec/q}", {"m": {"a": 1}, "l": [1, 2], "q": None}),
    ("test compares numbers by value", "- {op: test, path: /spec/m/a, value: 1.0}\n- {op: add, path: /spec/ok, value: true}",
     {"m": {"a": 1}, "l": [1, 2], "ok": True}),
    ("values are read as sigs.k8s.io/yaml reads them",
     "- op: add\n  path: /spec/v\n  value: {a: yes, b: 1.0, c: 012, d: '1', e: on, f: 2024-01-01, g: 1e3, h: ~}",
     {"m": {"a": 1}, "l": [1, 2], "v": {"a": True, "b": 1, "c": 10, "d": "1", "e": True,
                                        "f": "2024-01-01", "g": 1000, "h": None}}),
    ("move and copy", "- {op: copy, from: /spec/m, path: /spec/n}\n- {op: move, from: /spec/m/a, path: /spec/m/b}",
     {"m": {"b": 1}, "n": {"a": 1}, "l": [1, 2]}),
    ("~1 and ~0 in a path", "- {op: add, path: /spec/m/x~1y~0, value: 1}", {"m": {"a": 1, "x/y~": 1}, "l": [1, 2]}),
]


def operations(text: str) -> list[Any]:
    value = kubeyaml.read_documents("ops", text, v2=True)[0].value
    assert isinstance(value, list)
    return value


@pytest.mark.parametrize(("case", "ops", "expected"), JSON_PATCHES, ids=[j[0] for j in JSON_PATCHES])
def test_json_patch(case: str, ops: str, expected: object) -> None:
    target = obj(SPEC)
    assert spec_of(apply_json_patch(target, operations(ops))) == expected
    assert target == obj(SPEC)


REFUSED_JSON = [
    ("replace under a missing parent", "- {op: replace, path: /spec/x/a, value: 1}",
     "replace operation does not apply: doc is missing path: /spec/x/a"),
    ("remove of a missing key", "- {op: remove, path: /spec/m/b}", "Unable to remove nonexistent key: b"),
    ("replace past the end", "- {op: replace, path: /spec/l/5, value: 1}", "doc is missing key: /spec/l/5"),
    ("add past the end", "- {op: add, path: /spec/l/3, value: 9}", "Unable to access invalid index: 3"),
    ("add under a scalar", "- {op: add, path: /spec/m/a/x, value: 1}", "doc is missing path"),
    ("move into itself", "- {op: move, from: /spec/m, path: /spec/m/x}", "doc is missing destination path"),
    ("unknown op", "- {op: frob, path: /spec/m}", "Unexpected kind: frob"),
    ("failed test", "- {op: test, path: /metadata/name, value: x}", "testing value /metadata/name failed"),
    ("true is not 1", "- {op: test, path: /spec/m/a, value: true}", "testing value /spec/m/a failed"),
]


@pytest.mark.parametrize(("case", "ops", "message"), REFUSED_JSON, ids=[j[0] for j in REFUSED_JSON])
def test_json_patch_refuses(case: str, ops: str, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        apply_json_patch(obj(SPEC), operations(ops))


def test_json_patch_values_are_copied_per_object() -> None:
    """One patch applies to many objects: a later operation must not change an earlier value."""
    ops = operations("- {op: add, path: /spec/n, value: [1]}\n- {op: add, path: /spec/n/-, value: 2}")
    first, second = apply_json_patch(obj(SPEC), ops), apply_json_patch(obj(SPEC), ops)
    assert spec_of(first) == spec_of(second) == {"m": {"a": 1}, "l": [1, 2], "n": [1, 2]}
    assert ops[0]["value"] == [1]
