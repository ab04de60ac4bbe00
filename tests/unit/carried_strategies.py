"""Hypothesis strategies for the Flux fields gitward carries verbatim (`FluxField`), per kind.

Each kind gets the fields its Flux reader keeps: metadata labels, annotations and finalizers,
and the spec fields it ignores (any JSON value, since they are kept unread) or checks before
keeping (a value of their shape). Fields come sorted by path, as the readers give them.
"""

from __future__ import annotations

from hypothesis import strategies as st

from engine.model import FluxField, GitSource, ImagePolicy, ImageRepository, ImageUpdate, Kustomization, OCISource
from engine.rules.fluxfields import carried

KEYS = st.from_regex(r"[a-z][a-zA-Z0-9]{0,8}", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
SCALARS = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | TEXT
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=8
).filter(lambda value: value is not None)
STRING_MAPS = st.dictionaries(
    st.from_regex(r"[a-z0-9]([-a-z0-9./]{0,10}[a-z0-9])?", fullmatch=True).filter(
        lambda key: not key.startswith("gitward.dev/")),
    TEXT, min_size=1, max_size=3,
)
NAME_REFS = st.fixed_dictionaries({"name": st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)})

METADATA = {
    "metadata.labels": STRING_MAPS,
    "metadata.annotations": STRING_MAPS,
    "metadata.finalizers": st.lists(TEXT.filter(bool), min_size=1, max_size=2),
}
SPEC: dict[type, dict[str, st.SearchStrategy[object]]] = {
    GitSource: {
        **{path: JSON for path in ("spec.include", "spec.serviceAccountName", "spec.sparseCheckout",
                                   "spec.verify")},
        "spec.provider": st.sampled_from(["generic", "azure", "github"]),
    },
    OCISource: {"spec.verify": st.fixed_dictionaries(
        {"provider": st.sampled_from(["cosign", "notation"])}, optional={"secretRef": NAME_REFS})},
    Kustomization: {
        **{path: JSON for path in ("spec.decryption", "spec.deletionPolicy", "spec.healthCheckExprs",
                                   "spec.ignoreMissingComponents")},
        "spec.kubeConfig": st.fixed_dictionaries({"secretRef": NAME_REFS}) | st.fixed_dictionaries(
            {"configMapRef": NAME_REFS}),
    },
    ImageRepository: {"spec.accessFrom": JSON},
    ImagePolicy: {},
    ImageUpdate: {"spec.policySelector.matchExpressions": JSON},
}


def flux_fields(kind: type) -> st.SearchStrategy[tuple[FluxField, ...]]:
    """Some of the fields the reader of `kind` keeps, with values, sorted by path."""
    choices = {**METADATA, **SPEC[kind]}
    return st.sets(st.sampled_from(sorted(choices)), max_size=3).flatmap(
        lambda paths: st.tuples(*(choices[path].map(lambda value, path=path: carried(path, value))
                                  for path in sorted(paths))))
