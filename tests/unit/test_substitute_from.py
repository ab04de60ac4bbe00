"""`postBuild.substituteFrom` in the pure layer: what a live ConfigMap or Secret offers as
variables, and how Flux merges them with `postBuild.substitute` (order, precedence, missing
objects, invalid names, newlines). Reading the objects from a real API server is in
tests/integration/test_substitute_from.py.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

import pytest

from engine.errors import Problems, SourcePos
from engine.evaluate import postbuild, render
from engine.evaluate.postbuild import Fetched
from engine.evaluate.render import Located
from engine.model import Kustomization, Manifest, SourceRef, SubstituteFrom

SECRET_VALUE = "s3cr3t-hunter2"


def ks(*refs: SubstituteFrom, substitute: tuple[tuple[str, str], ...] = ()) -> Kustomization:
    return Kustomization(name="apps", namespace="apps", source_ref=SourceRef("flux-system"),
                         path="./apps", substitute=substitute, substitute_from=refs,
                         origin=SourcePos("apps.yaml", 1, 1))


def ref(kind: str, name: str, line: int, optional: bool = False) -> SubstituteFrom:
    return SubstituteFrom(kind, name, optional, origin=SourcePos("apps.yaml", line, 7))


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def merged(target: Kustomization, fetched: Sequence[Fetched]) -> tuple[dict[str, str], Problems]:
    problems = Problems()
    return postbuild.merge_variables(target, fetched, problems), problems


def located(body: Mapping[str, object]) -> Located:
    return Located(Manifest(dict(body), "apps/app.yaml"), SourcePos("apps/app.yaml", 1, 1))


# What a live object offers ----------------------------------------------------------------------


def test_a_config_map_offers_its_data_and_not_its_binary_data() -> None:
    live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vars"},
            "data": {"region": "eu-central-1", "zone": "\naz-1a\n"},
            "binaryData": {"blob": b64("binary")}}
    assert postbuild.live_variables("ConfigMap", live) == {"region": "eu-central-1", "zone": "\naz-1a\n"}


def test_a_secret_offers_its_data_decoded_from_base64() -> None:
    live = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "data": {"token": b64(SECRET_VALUE), "empty": "", "bytes": b64(b"a\xffb")}}
    assert postbuild.live_variables("Secret", live) == {"token": SECRET_VALUE, "empty": "",
                                                     "bytes": "a\ufffdb"}


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_an_object_without_data_offers_nothing(kind: str) -> None:
    assert postbuild.live_variables(kind, {"kind": kind, "metadata": {"name": "x"}}) == {}


# Merging ---------------------------------------------------------------------------------------


def test_later_objects_override_earlier_ones_and_substitute_overrides_them_all() -> None:
    first, second = ref("ConfigMap", "base", 10), ref("Secret", "overrides", 12)
    target = ks(first, second, substitute=(("inline", "from-spec"), ("shared", "spec")))
    variables, problems = merged(target, [
        (first, {"zone": "\naz-1a\n", "shared": "configmap", "only_cm": "cm", "inline": "cm"}),
        (second, {"zone": "az-1b\n", "shared": "secret"}),
    ])
    assert not list(problems)
    assert variables == {"zone": "az-1b", "shared": "spec", "only_cm": "cm", "inline": "from-spec"}


def test_a_missing_object_fails_at_its_reference_unless_optional() -> None:
    required, optional = ref("ConfigMap", "cluster-vars", 14), ref("Secret", "maybe", 16, optional=True)
    variables, problems = merged(ks(required, optional, substitute=(("A", "a"),)),
                                 [(required, None), (optional, None)])
    [problem] = problems.errors
    assert problem.message == ("substitute from 'ConfigMap/cluster-vars' error: configmaps "
                               '"cluster-vars" not found in namespace apps')
    assert problem.pos == SourcePos("apps.yaml", 14, 7)
    assert "optional: true" in problem.hint
    assert variables == {"A": "a"}


def test_an_optional_missing_object_counts_as_empty_and_says_nothing() -> None:
    optional = ref("Secret", "maybe", 16, optional=True)
    variables, problems = merged(ks(optional), [(optional, None)])
    assert variables == {} and not list(problems)


def test_a_missing_secret_is_named_as_flux_names_it() -> None:
    secret = ref("Secret", "creds", 18)
    _, problems = merged(ks(secret), [(secret, None)])
    assert problems.errors[0].message.startswith(
        "substitute from 'Secret/creds' error: secrets \"creds\" not found")


def test_an_invalid_key_fails_at_the_reference_naming_the_key_not_the_value() -> None:
    secret = ref("Secret", "creds", 20)
    variables, problems = merged(ks(secret), [(secret, {"app.port": SECRET_VALUE, "GOOD": "x"})])
    [problem] = problems.errors
    assert problem.pos == SourcePos("apps.yaml", 20, 7)
    assert 'postBuild.substituteFrom Secret/creds: key "app.port" is not a valid variable name' \
        in problem.message
    assert SECRET_VALUE not in problem.render()
    assert variables == {"GOOD": "x"}


def test_invalid_inline_names_are_still_reported_with_fetched_objects() -> None:
    cm = ref("ConfigMap", "vars", 10)
    _, problems = merged(ks(cm, substitute=(("bad-name", "x"),)), [(cm, {"ok": "1"})])
    assert ['postBuild.substitute: "bad-name"' in p.message for p in problems.errors] == [True]


# Substituting -----------------------------------------------------------------------------------


BODY = {"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "app", "namespace": "apps"},
        "data": {"zone": "${zone}", "color": "${color:=blue}"}}


def test_finish_substitutes_the_fetched_variables() -> None:
    cm = ref("ConfigMap", "vars", 10)
    problems = Problems()
    [out] = postbuild.finish([located(BODY)], ks(cm), problems, [(cm, {"zone": "az-1a"})])
    assert not problems.errors
    assert out.manifest.body["data"] == {"zone": "az-1a", "color": "blue"}


def test_offline_finish_uses_substitute_only() -> None:
    cm = ref("ConfigMap", "vars", 10)
    problems = Problems()
    [out] = postbuild.finish([located(BODY)], ks(cm, substitute=(("zone", "inline"),)), problems)
    assert out.manifest.body["data"] == {"zone": "inline", "color": "blue"}


def test_no_variables_at_all_means_no_substitution_as_in_flux() -> None:
    """An optional object that is absent (or empty) defines nothing; with no `substitute`
    either, Flux substitutes nothing, defaults included."""
    cm = ref("ConfigMap", "vars", 10, optional=True)
    problems = Problems()
    [out] = postbuild.finish([located(BODY)], ks(cm), problems, [(cm, None)])
    assert out.manifest.body["data"] == {"zone": "${zone}", "color": "${color:=blue}"}


def test_substitution_is_wanted_unless_every_object_disables_it() -> None:
    disabled = {**BODY, "metadata": {"name": "app", "annotations": {render.SUBSTITUTE_KEY: "disabled"}}}
    assert postbuild.wants_substitution([located(disabled), located(BODY)])
    assert not postbuild.wants_substitution([located(disabled)])
    assert not postbuild.wants_substitution([])
