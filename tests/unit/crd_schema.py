"""Flux's CRD schemas from the corpora's gotk-components.yaml, and Flux objects compared as data.

`crd_schemas` finds each served (kind, version) of the kinds gitward models, newest Flux first;
`flux_equal_form` is an object as Flux's controllers see it: the CRD's defaults applied,
Go's omitted zero values dropped, durations as seconds, a beta Kustomization's deprecated
patches as the v1 `patches` they mean, and the defaults Flux applies in code (a GitRepository
without a ref follows `master`, an empty exclusion list is the default one, ...). Two objects
with the same form are the same object to Flux.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from engine.model import DEFAULT_COMMIT_MESSAGE, DEFAULT_EXCLUSION_LIST, DEFAULT_NAMESPACE
from engine.rules.duration import parse_duration

Schema = dict[str, Any]

KINDS = ("GitRepository", "OCIRepository", "Kustomization", "ImageRepository", "ImagePolicy",
         "ImageUpdateAutomation")
DURATION_PATTERNS = (r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$", r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$")
DURATION_FIELDS = ("interval", "timeout", "retryInterval")
"""Durations by name, for the older CRDs that give them no pattern."""
_FLUX_VERSION = re.compile(r"^# Flux Version: v(\d+)\.(\d+)\.(\d+)", re.MULTILINE)

CODE_DEFAULTS: dict[str, dict[str, object]] = {
    "GitRepository": {"ref": {"branch": "master"}},
    "ImageRepository": {"exclusionList": list(DEFAULT_EXCLUSION_LIST)},
}
"""Spec defaults Flux applies in its controllers, not in the CRD (source-controller's `master`,
image-reflector-controller's GetExclusionList)."""


def crd_schemas(corpus: Path) -> dict[tuple[str, str], Schema]:
    """(kind, version) -> the openAPIV3Schema of that served version, from the newest Flux."""
    files = sorted(corpus.rglob("gotk-components.yaml"), key=_flux_version, reverse=True)
    found: dict[tuple[str, str], Schema] = {}
    for path in files:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            kind = doc["spec"]["names"]["kind"]
            if kind not in KINDS:
                continue
            for version in doc["spec"]["versions"]:
                if version.get("served", True):
                    found.setdefault((kind, version["name"]), version["schema"]["openAPIV3Schema"])
    return found


def _flux_version(path: Path) -> tuple[int, ...]:
    match = _FLUX_VERSION.search(path.read_text(encoding="utf-8")[:200])
    return tuple(int(part) for part in match.groups()) if match else (0,)


def flux_equal_form(obj: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """What Flux reads from `obj` (read with `schema`), as plain data to compare."""
    kind = obj["kind"]
    spec = copy.deepcopy(obj.get("spec") or {})
    if kind == "Kustomization":
        spec = _v1_patches(spec)
    if kind == "ImageRepository" and spec.get("exclusionList") == []:
        del spec["exclusionList"]
    if kind == "ImageUpdateAutomation":
        commit = spec.get("git", {}).get("commit", {})
        if commit.get("messageTemplate") == DEFAULT_COMMIT_MESSAGE:
            del commit["messageTemplate"]
    if kind == "OCIRepository" and spec.get("layerSelector", {}).get("operation", "extract") == "extract":
        spec.get("layerSelector", {}).pop("operation", None)  # source-controller's default
    for key, value in CODE_DEFAULTS.get(kind, {}).items():
        spec.setdefault(key, copy.deepcopy(value))
    meta = obj.get("metadata") or {}
    metadata = {key: meta[key] for key in ("name", "labels", "annotations") if meta.get(key)}
    metadata["namespace"] = meta.get("namespace") or DEFAULT_NAMESPACE
    return {
        "group": str(obj["apiVersion"]).rpartition("/")[0],
        "kind": kind,
        "metadata": metadata,
        "spec": _normal(spec, schema["properties"]["spec"]),
    }


def _v1_patches(spec: dict[str, Any]) -> dict[str, Any]:
    """The beta API's patchesStrategicMerge and patchesJson6902 as the v1 patches they mean."""
    patches = list(spec.pop("patches", []))
    patches += [{"patch": item} for item in spec.pop("patchesStrategicMerge", [])]
    patches += [{"patch": item["patch"], "target": item["target"]} for item in spec.pop("patchesJson6902", [])]
    for patch in patches:
        if isinstance(patch.get("patch"), str):
            patch["patch"] = yaml.safe_load(patch["patch"])
    if patches:
        spec["patches"] = patches
    return spec


def _zero(value: object) -> bool:
    """What Go's `omitempty` leaves out: nothing to Flux."""
    return value is None or value is False or value == "" or value == [] or value == {}


def _normal(value: Any, schema: Schema, name: str = "") -> Any:
    if isinstance(value, dict) and "properties" in schema:
        out = {}
        for key, sub in schema["properties"].items():
            if key in value:
                item = _normal(value[key], sub, key)
            elif "default" in sub:
                item = _normal(copy.deepcopy(sub["default"]), sub, key)
            else:
                continue
            if not _zero(item):
                out[key] = item
        out.update({key: item for key, item in value.items() if key not in schema["properties"]})
        return out
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        return {key: _normal(item, schema["additionalProperties"]) for key, item in value.items()}
    if isinstance(value, list) and "items" in schema:
        return [_normal(item, schema["items"]) for item in value]
    if isinstance(value, str) and (schema.get("pattern") in DURATION_PATTERNS or name in DURATION_FIELDS):
        return parse_duration(value).total_seconds()
    return value
