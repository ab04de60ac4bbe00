"""What Flux does after a Kustomization's build: `postBuild` variables, then its labels.

kustomize-controller substitutes `postBuild.substitute` (and, on a cluster, the variables of the
`substituteFrom` ConfigMaps and Secrets) in each object that does not opt out, then sets its owner
labels and `commonMetadata`; an object defined twice fails the build.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from engine.errors import Problems
from engine.evaluate import kubeyaml
from engine.evaluate.envsubst import VAR_NAME, SubstitutionError, substitute
from engine.evaluate.render import OWNER_GROUP, SUBSTITUTE_KEY, Located, read_objects
from engine.model import Kustomization, Manifest, SubstituteFrom
from engine.rules.yamldoc import YamlSyntaxError

def _identity(m: Manifest) -> tuple[str, str, str, str]:
    """kustomize's identity: the namespace "default" is the same as none."""
    return (m.group, m.kind, m.namespace or "default", m.name)


def check_duplicates(items: Sequence[Located], problems: Problems) -> None:
    """One error per object defined twice, naming where both definitions are."""
    first: dict[tuple[str, str, str, str], Located] = {}
    for item in items:
        key = _identity(item.manifest)
        seen = first.setdefault(key, item)
        if seen is not item:
            problems.error(f"{item.manifest.id} is defined twice: in {seen.manifest.origin} and in "
                           f"{item.manifest.origin}", item.pos, code="duplicate")


def check_variables(ks: Kustomization, problems: Problems) -> dict[str, str]:
    """`postBuild.substitute` as Flux uses it: names checked, newlines dropped from values."""
    variables: dict[str, str] = {}
    for name, value in ks.substitute:
        if not VAR_NAME.fullmatch(name):
            problems.error(f'postBuild.substitute: "{name}" is not a valid variable name: it must '
                           f"match {VAR_NAME.pattern}", ks.origin)
            continue
        variables[name] = value.replace("\n", "")
    return variables


Fetched = tuple[SubstituteFrom, Mapping[str, str] | None]
"""A `postBuild.substituteFrom` reference and its object's variables (None: no such object)."""


def live_variables(kind: str, body: Mapping[str, Any]) -> dict[str, str]:
    """The variables a live ConfigMap or Secret offers, as kustomize-controller reads them.

    Only `data` counts: a ConfigMap's `binaryData` is ignored, and a live Secret has no
    `stringData` (the API server folds it into `data` on write), so its `data` is decoded from
    base64. Bytes that are not UTF-8 become U+FFFD (Flux would fail the build where such a
    value is substituted). Values are raw here; `merge_variables` drops their newlines.
    """
    data = body.get("data")
    if not isinstance(data, Mapping):
        return {}
    out: dict[str, str] = {}
    for key, value in data.items():
        text = "" if value is None else str(value)
        if kind == "Secret":
            try:
                text = base64.b64decode(text, validate=True).decode("utf-8", errors="replace")
            except (binascii.Error, ValueError):
                text = ""
        out[str(key)] = text
    return out


def merge_variables(ks: Kustomization, fetched: Sequence[Fetched], problems: Problems) -> dict[str, str]:
    """Flux's post-build variables on a cluster: every `substituteFrom` object in list order (a
    name in several takes the later object's value), then `postBuild.substitute` over them all.

    As in kustomize-controller, the objects come from the Kustomization's namespace, newlines
    are dropped from every value, and every name must be a valid variable name (a ConfigMap key
    such as `app.port` fails the build). A missing object fails the build unless the reference
    is `optional`, which makes it count as an object with no variables. Messages name keys and
    objects, never values: a Secret's values stay out of them.
    """
    variables: dict[str, str] = {}
    for ref, data in fetched:
        subject = f"{ref.kind}/{ref.name}"
        if data is None:
            if not ref.optional:
                plural = "configmaps" if ref.kind == "ConfigMap" else "secrets"
                problems.error(f"substitute from '{subject}' error: {plural} \"{ref.name}\" not found "
                               f"in namespace {ks.namespace}", ref.origin,
                               hint="create it, or set optional: true to go on without it")
            continue
        for name, value in data.items():
            if not VAR_NAME.fullmatch(name):
                problems.error(f'postBuild.substituteFrom {subject}: key "{name}" is not a valid '
                               f"variable name: it must match {VAR_NAME.pattern}", ref.origin)
                continue
            variables[name] = value.replace("\n", "")
    variables.update(check_variables(ks, problems))
    return variables


def wants_substitution(items: Sequence[Located]) -> bool:
    """Whether any object is open to substitution: Flux reads `substituteFrom` objects only then."""
    return any(not _disabled(item.manifest.body) for item in items)


def _where(item: Located) -> str:
    """How a message names an object whose position is already given: its document, or origin."""
    return f"document {item.document}" if item.document else item.manifest.origin


def _disabled(body: Mapping[str, Any]) -> bool:
    meta = body.get("metadata") or {}
    return any((meta.get(key) or {}).get(SUBSTITUTE_KEY) == "disabled"
               for key in ("labels", "annotations"))


def substitute_variables(items: Sequence[Located], variables: Mapping[str, str],
                         problems: Problems) -> list[Located]:
    """Flux's post-build substitution of each object (none when there are no variables)."""
    if not variables:
        return list(items)
    out: list[Located] = []
    for item in items:
        body = item.manifest.body
        text = kubeyaml.dump(body)
        if _disabled(body) or "$" not in text:
            out.append(item)
            continue
        try:
            result = substitute(text, variables)
        except SubstitutionError as err:
            problems.error(f"{_where(item)}: variable substitution failed: {err}", item.pos)
            continue
        if result == text:
            out.append(item)
            continue
        where = f"{_where(item)}: after variable substitution"
        try:
            docs = kubeyaml.read_documents(item.pos.path, result, v2=True)
        except YamlSyntaxError as err:
            problems.error(f"{where}: not valid YAML: {err.problem.message}", item.pos)
            continue
        values = [d.value for d in docs]
        bodies = read_objects(values[0], where, item.pos, problems) if len(values) == 1 else []
        if len(values) != 1:
            problems.error(f"{where}: expected one object, got {len(values)} documents", item.pos)
        out.extend(Located(Manifest(b, item.manifest.origin), item.pos, item.file, item.document)
                   for b in bodies)
    return out


def set_metadata(items: Sequence[Located], ks: Kustomization) -> list[Located]:
    """Flux's owner labels, then `commonMetadata` (which wins on a shared key)."""
    labels = {f"{OWNER_GROUP}/name": ks.name, f"{OWNER_GROUP}/namespace": ks.namespace,
              **dict(ks.common_labels)}
    annotations = dict(ks.common_annotations)
    out: list[Located] = []
    for item in items:
        body = item.manifest.body
        meta = dict(body.get("metadata") or {})  # type: ignore[call-overload]
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
        if annotations:
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        manifest = replace(item.manifest, body={**body, "metadata": meta})
        out.append(Located(manifest, item.pos))
    return out


def finish(items: Sequence[Located], ks: Kustomization, problems: Problems,
           fetched: Sequence[Fetched] | None = None) -> list[Located]:
    """What Flux does after the build: substitute, then label; duplicates are errors.

    `fetched` holds the `substituteFrom` objects read from a cluster; None (offline) leaves
    them out, so only `postBuild.substitute` counts, as with `flux build --dry-run`.
    """
    variables = check_variables(ks, problems) if fetched is None else merge_variables(ks, fetched, problems)
    done = set_metadata(substitute_variables(items, variables, problems), ks)
    check_duplicates(done, problems)
    return done
