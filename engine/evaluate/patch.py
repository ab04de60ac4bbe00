"""kustomize's two patch kinds, over objects as plain data: strategic merge and JSON 6902.

Strategic merge is kyaml's merge2 without a schema, which is how kustomize patches every kind
it has no OpenAPI schema for (all Flux kinds). Found by experiment with kustomize v5.5:
- maps merge key by key; a null value deletes the key; a missing or null target takes the
  patch's value with its nulls and directives resolved;
- lists are never merged: the patch's list replaces the target's, verbatim (a `$patch`
  directive inside a list element stays in the output);
- `$patch: delete` removes a map, `$patch: replace` replaces it, `$patch: merge` is the
  default; another strategy is an error; `$retainKeys`, `$setElementOrder/...` and
  `$deleteFromPrimitiveList/...` are ordinary keys;
- a map, list or scalar meeting another shape is an error ("wrong node kind");
- at the top of an object, `$patch: delete` deletes the object and `$patch: replace` leaves
  it unchanged (kyaml returns a new node that kustomize never takes).

JSON 6902 is evanphx/json-patch v4 as kustomize calls it: negative indexes count from the end,
`replace` of a missing map key adds it, `copy` from a missing key copies null.

Objects are never mutated: a merge builds new maps along the changed paths and shares the rest;
a JSON patch works on a copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

DIRECTIVE = "$patch"


class PatchError(ValueError):
    """A patch kustomize refuses to apply, worded as kustomize words it."""


class Deleted:
    """The result of `$patch: delete`: the key (or the object) goes."""


DELETED = Deleted()


def copy_data(value: Any) -> Any:
    """A deep copy of JSON-like data (much faster than copy.deepcopy on large objects)."""
    if isinstance(value, dict):
        return {k: copy_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_data(v) for v in value]
    return value


def _node_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "MappingNode"
    if isinstance(value, list):
        return "SequenceNode"
    return "ScalarNode"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# Strategic merge ----------------------------------------------------------------------------


def merge_object(target: Mapping[str, Any], patch: Mapping[str, Any]) -> Mapping[str, Any] | Deleted:
    """`patch` merged into the object `target` (both whole objects), or DELETED.

    The caller restores what kustomize restores afterwards (kind, name, namespace)."""
    directive = patch.get(DIRECTIVE)
    if directive is not None:
        strategy = _text(directive)
        if strategy == "delete":
            return DELETED
        if strategy == "replace":
            return target
        if strategy != "merge":
            raise PatchError(f"unknown patch strategy '{strategy}'")
        patch = {k: v for k, v in patch.items() if k != DIRECTIVE}
    return _merge_fields(target, patch)


def _merge(target: Any, patch: Any) -> Any:
    """One value of the patch over one value of the target (None: the target has none)."""
    if target is not None and _node_kind(target) != _node_kind(patch):
        raise PatchError(f"wrong node kind: expected {_node_kind(target)} but got "
                         f"{_node_kind(patch)}")
    if isinstance(patch, dict):
        return _merge_map(target, patch)
    return patch


def _merge_map(target: dict[str, Any] | None, patch: dict[str, Any]) -> dict[str, Any] | Deleted:
    if DIRECTIVE in patch:
        strategy = _text(patch[DIRECTIVE])
        if strategy == "delete":
            return DELETED
        if strategy in ("replace", "merge"):
            patch = {k: v for k, v in patch.items() if k != DIRECTIVE}
            if strategy == "replace":
                target = None
        elif target is not None:
            raise PatchError(f"unknown patch strategy '{strategy}'")
    if target is None:
        return _resolve(patch)
    return _merge_fields(target, patch)


def _merge_fields(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
            continue
        merged = _merge(result.get(key), value)
        if merged is DELETED:
            result.pop(key, None)
        else:
            result[key] = merged
    return result


def _resolve(patch: dict[str, Any]) -> dict[str, Any]:
    """A patch map taken where the target has nothing: kyaml merges it into itself, so nulls
    go, nested directives apply, and an unknown nested strategy is an error."""
    result: dict[str, Any] = {}
    for key, value in patch.items():
        if value is None:
            continue
        merged = _merge(value, value)
        if merged is not DELETED:
            result[key] = merged
    return result


# JSON 6902 -----------------------------------------------------------------------------------

_INDEX = re.compile(r"[+-]?[0-9]+")
_MISSING = object()


def _decode_key(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _index(key: str) -> int:
    if not _INDEX.fullmatch(key):
        raise PatchError(f"value was not a proper array index: '{key}'")
    return int(key)


def _get(container: dict[str, Any] | list[Any], key: str) -> Any:
    """The value at `key`, _MISSING for an absent map key; PatchError for a bad array index."""
    if isinstance(container, dict):
        return container.get(key, _MISSING)
    idx = _index(key)
    if idx < 0:
        if idx < -len(container):
            raise PatchError(f"Unable to access invalid index: {idx}: invalid index referenced")
        idx += len(container)
    if idx >= len(container):
        raise PatchError(f"Unable to access invalid index: {idx}: invalid index referenced")
    return container[idx]


def _find(doc: Any, path: str) -> tuple[dict[str, Any] | list[Any] | None, str]:
    parts = path.split("/")
    if len(parts) < 2:
        return None, ""
    current = doc
    for part in parts[1:-1]:
        try:
            current = _get(current, _decode_key(part))
        except PatchError:
            return None, ""
        if not isinstance(current, (dict, list)):
            return None, ""
    return current, _decode_key(parts[-1])


def _add(container: dict[str, Any] | list[Any], key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
        return
    if key == "-":
        container.append(value)
        return
    idx = _index(key)
    size = len(container) + 1
    if idx >= size or idx < -size:
        raise PatchError(f"Unable to access invalid index: {idx}: invalid index referenced")
    container.insert(idx + size if idx < 0 else idx, value)


def _remove(container: dict[str, Any] | list[Any], key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise PatchError(f"Unable to remove nonexistent key: {key}: missing value")
        del container[key]
        return
    idx = _index(key)
    if idx >= len(container) or idx < -len(container):
        raise PatchError(f"Unable to access invalid index: {idx}: invalid index referenced")
    del container[idx]


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, booleans only equal booleans."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _string(op: Mapping[str, Any], field: str) -> str:
    value = op.get(field)
    return value if isinstance(value, str) else ""


def apply_json_patch(body: Mapping[str, Any], operations: Sequence[Any]) -> dict[str, Any]:
    """A copy of `body` with the JSON 6902 `operations` applied in order; raises PatchError."""
    doc: Any = copy_data(body)
    for op in operations:
        if not isinstance(op, dict):
            raise PatchError("a JSON patch operation must be a mapping")
        kind, path = _string(op, "op"), _string(op, "path")
        value = copy_data(op.get("value"))
        if kind == "add":
            container, key = _find(doc, path)
            if container is None:
                raise PatchError(f'add operation does not apply: doc is missing path: "{path}": missing value')
            _wrap(lambda: _add(container, key, value), f"error in add for path: '{path}'")
        elif kind == "remove":
            container, key = _find(doc, path)
            if container is None:
                raise PatchError(f'remove operation does not apply: doc is missing path: "{path}": missing value')
            _wrap(lambda: _remove(container, key), f"error in remove for path: '{path}'")
        elif kind == "replace":
            doc = _replace(doc, path, value)
        elif kind in ("move", "copy"):
            doc = _move(doc, op, kind, path)
        elif kind == "test":
            _test(doc, path, op)
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    if not isinstance(doc, dict):
        raise PatchError("a JSON patch left the object without a mapping at its root")
    return doc


def _wrap(action: Any, context: str) -> None:
    try:
        action()
    except PatchError as err:
        raise PatchError(f"{context}: {err}") from None


def _replace(doc: Any, path: str, value: Any) -> Any:
    if path == "":
        if not isinstance(value, (dict, list)):
            raise PatchError("replace operation value must be object or array")
        return value
    container, key = _find(doc, path)
    if container is None:
        raise PatchError(f"replace operation does not apply: doc is missing path: {path}: missing value")
    try:
        _get(container, key)
    except PatchError:
        raise PatchError(f"replace operation does not apply: doc is missing key: {path}: missing value") from None
    if isinstance(container, dict):
        container[key] = value
    else:
        idx = _index(key)
        container[idx] = value
    return doc


def _move(doc: Any, op: Mapping[str, Any], kind: str, path: str) -> Any:
    source = _string(op, "from")
    container, key = _find(doc, source)
    if container is None:
        raise PatchError(f"{kind} operation does not apply: doc is missing from path: {source}: missing value")
    try:
        value = _get(container, key)
    except PatchError as err:
        raise PatchError(f"error in {kind} for path: '{key}': {err}") from None
    if kind == "move":
        _wrap(lambda: _remove(container, key), f"error in move for path: '{key}'")
    else:
        value = None if value is _MISSING else copy_data(value)
    target, target_key = _find(doc, path)
    if target is None:
        raise PatchError(f"{kind} operation does not apply: doc is missing destination path: {path}: "
                         "missing value")
    _wrap(lambda: _add(target, target_key, value), f"error in {kind} for path: '{path}'")
    return doc


def _test(doc: Any, path: str, op: Mapping[str, Any]) -> None:
    if path == "":
        actual: Any = doc
    else:
        container, key = _find(doc, path)
        if container is None:
            raise PatchError(f"test operation does not apply: is missing path: {path}: missing value")
        try:
            actual = _get(container, key)
        except PatchError as err:
            raise PatchError(f"error in test for path: '{path}': {err}") from None
    if actual is _MISSING:
        if "value" not in op:
            return
    elif "value" in op and _equal(actual, op["value"]):
        return
    raise PatchError(f"testing value {path} failed: test failed")
