"""The rules DSL writer: canonical text that parses back to the same model."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import Problems, Severity
from engine.model import (
    DEFAULT_EXCLUSION_LIST,
    CommitAuthor,
    DigestReflection,
    Direction,
    GitRef,
    GitSource,
    HealthCheck,
    ImageOverride,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    LayerOperation,
    LayerSelector,
    MarkerDialect,
    MarkerValue,
    NamespacedRef,
    OCIRef,
    OCISource,
    Patch,
    PolicyChoice,
    PolicyKind,
    Rule,
    Selector,
    SourceKind,
    SourceRef,
    SubstituteFrom,
    TagFilter,
)
from engine.rules.parse import decode_literal, parse_rules
from engine.rules.fluxapi import IGNORED_FIELD
from engine.rules.printer import print_rules, quote
from tests.unit.carried_strategies import flux_fields

DOCS = Path(__file__).resolve().parents[2] / "docs" / "dsl.md"


def reparse(text: str) -> list[Rule]:
    """The rules of `text`; the only problems allowed are Flux's warnings about `flux` fields
    gitward keeps without acting on them."""
    problems = Problems()
    rules = parse_rules("printed.rules", text, problems)
    assert [p.render(excerpt=False) for p in problems
            if p.severity is not Severity.WARNING
            or not (p.code == IGNORED_FIELD or p.message.startswith("flux spec."))] == [], text
    return rules


# --- Strategies: every valid model ----------------------------------------------------------

WITHOUT_NUL = st.characters(codec="utf-8", exclude_characters="\0")
"""Any character a DSL string may hold: every one but NUL, which the reader refuses."""
texts = st.text(WITHOUT_NUL, max_size=24)
some_texts = st.text(WITHOUT_NUL, min_size=1, max_size=24)
labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
names = st.lists(labels, min_size=1, max_size=3).map(".".join)
ref_namespaces = st.one_of(st.just(""), labels)
durations = st.integers(0, 10**10).map(lambda ms: timedelta(milliseconds=ms))
optional_durations = st.none() | durations
pairs = st.lists(st.tuples(texts, texts), max_size=3).map(tuple)
git_refs = st.builds(
    GitRef, branch=texts, tag=texts, semver=texts, name=texts, commit=texts
).filter(lambda ref: not ref.is_empty())
source_refs = st.builds(SourceRef, name=names, namespace=ref_namespaces)
any_source_refs = st.builds(SourceRef, name=names, namespace=ref_namespaces, kind=st.sampled_from(SourceKind))
namespaced_refs = st.builds(NamespacedRef, name=names, namespace=ref_namespaces)


def _author_name(text: str) -> bool:
    return text == text.strip() and "<" not in text and ">" not in text


authors = st.builds(
    CommitAuthor,
    name=texts.filter(_author_name),
    email=some_texts.filter(lambda t: "<" not in t and ">" not in t and not any(c.isspace() for c in t)),
)

git_sources = st.builds(
    GitSource,
    name=names,
    url=texts,
    namespace=labels,
    ref=git_refs,
    interval=durations,
    timeout=durations,
    secret_ref=texts,
    proxy_secret_ref=texts,
    ignore=texts,
    suspend=st.booleans(),
    recurse_submodules=st.booleans(),
    flux_fields=flux_fields(GitSource),
)

oci_sources = st.builds(
    OCISource,
    name=names,
    url=texts,
    namespace=labels,
    ref=st.builds(OCIRef, tag=texts, semver=texts, semver_filter=texts, digest=texts),
    interval=durations,
    timeout=durations,
    secret_ref=texts,
    cert_secret_ref=texts,
    proxy_secret_ref=texts,
    insecure=st.booleans(),
    provider=st.sampled_from(["generic", "aws", "azure", "gcp"]),
    service_account_name=texts,
    layer_selector=st.builds(LayerSelector, media_type=texts, operation=st.sampled_from(LayerOperation)),
    ignore=texts,
    suspend=st.booleans(),
    flux_fields=flux_fields(OCISource),
)

selectors = st.builds(
    Selector,
    group=texts,
    version=texts,
    kind=texts,
    name=texts,
    namespace=texts,
    label_selector=texts,
    annotation_selector=texts,
)

kustomizations = st.builds(
    Kustomization,
    name=names,
    source_ref=any_source_refs,
    namespace=labels,
    path=texts,
    interval=durations,
    retry_interval=optional_durations,
    timeout=optional_durations,
    prune=st.booleans(),
    wait=st.booleans(),
    force=st.booleans(),
    suspend=st.booleans(),
    target_namespace=texts,
    name_prefix=texts,
    name_suffix=texts,
    service_account_name=texts,
    depends_on=st.lists(namespaced_refs, max_size=3).map(tuple),
    common_labels=pairs,
    common_annotations=pairs,
    images=st.lists(
        st.builds(ImageOverride, name=texts, new_name=texts, new_tag=texts, digest=texts), max_size=2
    ).map(tuple),
    patches=st.lists(st.builds(Patch, patch=texts, target=st.none() | selectors), max_size=2).map(tuple),
    substitute=pairs,
    substitute_from=st.lists(
        st.builds(SubstituteFrom, kind=st.sampled_from(["ConfigMap", "Secret"]), name=texts, optional=st.booleans()),
        max_size=2,
    ).map(tuple),
    health_checks=st.lists(
        st.builds(
            HealthCheck,
            api_version=texts,
            kind=st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}", fullmatch=True),
            name=names,
            namespace=ref_namespaces,
        ),
        max_size=2,
    ).map(tuple),
    components=st.lists(texts, max_size=2).map(tuple),
    flux_fields=flux_fields(Kustomization),
)

image_repositories = st.builds(
    ImageRepository,
    name=names,
    image=texts,
    namespace=labels,
    interval=durations,
    timeout=optional_durations,
    secret_ref=texts,
    cert_secret_ref=texts,
    proxy_secret_ref=texts,
    service_account_name=texts,
    provider=st.sampled_from(["generic", "aws", "azure", "gcp"]),
    insecure=st.booleans(),
    suspend=st.booleans(),
    exclusion_list=st.one_of(
        st.just(DEFAULT_EXCLUSION_LIST), st.just(()), st.lists(texts, min_size=1, max_size=3).map(tuple)
    ),
    page_size=st.integers(1, 999_999_999),
    flux_fields=flux_fields(ImageRepository),
)

choices = st.one_of(
    st.builds(PolicyChoice, kind=st.just(PolicyKind.SEMVER), direction=st.just(Direction.HIGHEST), range=some_texts),
    st.builds(
        PolicyChoice,
        kind=st.sampled_from([PolicyKind.ALPHABETICAL, PolicyKind.NUMERICAL]),
        direction=st.sampled_from(Direction),
        range=st.just(""),
    ),
)

image_policies = st.builds(
    ImagePolicy,
    name=names,
    repository=namespaced_refs,
    choice=choices,
    namespace=labels,
    filter=st.none() | st.builds(TagFilter, pattern=texts, extract=texts),
    digest_reflection=st.sampled_from(DigestReflection),
    interval=optional_durations,
    suspend=st.booleans(),
    hold=optional_durations,
    never_downgrade=st.booleans(),
    pin=texts,
    allow_rollback=st.booleans(),
    flux_fields=flux_fields(ImagePolicy),
)

image_updates = st.builds(
    ImageUpdate,
    name=names,
    source_ref=source_refs,
    author=authors,
    namespace=labels,
    interval=durations,
    suspend=st.booleans(),
    path=texts,
    checkout_ref=st.none() | git_refs,
    message_template=texts,
    message_template_values=pairs,
    push_branch=texts,
    push_refspec=texts,
    push_options=pairs,
    policy_selector=pairs,
    signing_key_secret=texts,
    flux_fields=flux_fields(ImageUpdate),
)

marker_dialects = st.one_of(
    st.builds(
        MarkerDialect,
        name=names,
        files=st.lists(texts, min_size=1, max_size=3).map(tuple),
        json_key=texts,
        comment=texts,
        screen=texts,
        value=st.just(MarkerValue.YAML_SCALAR),
        value_pattern=st.just(""),
    ),
    st.builds(
        MarkerDialect,
        name=names,
        files=st.lists(texts, min_size=1, max_size=3).map(tuple),
        value=st.just(MarkerValue.REGEX),
        value_pattern=some_texts,
    ),
)

rules = st.one_of(git_sources, oci_sources, kustomizations, image_repositories, image_policies, image_updates, marker_dialects)


# --- Round trips ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(rules, max_size=4))
def test_parse_of_print_gives_the_rules_back(models: list[Rule]) -> None:
    text = print_rules(models)
    assert reparse(text) == models
    assert print_rules(reparse(text)) == text


@settings(max_examples=1000, deadline=None)
@given(st.text(WITHOUT_NUL, max_size=60), st.sampled_from(["", "  ", "    ", "\t"]))
def test_quote_reads_back_exactly(text: str, indent: str) -> None:
    assert decode_literal(quote(text, indent)) == text


def test_a_string_with_a_nul_reads_back_as_no_literal() -> None:
    assert decode_literal(quote("a\0b", "")) is None


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("plain", '"plain"'),
        ("", '""'),
        (r"^.*\.sig$", r'"^.*\.sig$"'),
        (r"^v\d+\n", r"'^v\d+\n'"),
        ('"$imagepolicy"', """'"$imagepolicy"'"""),
        ("it's \"both\"", '"it\'s \\"both\\""'),
        ("tab\there", r'"tab\there"'),
        ("bell\x07", r'"bell\u0007"'),
        ("trailing\\", r"'trailing\'"),
        ("it's trailing\\", '"it\'s trailing\\\\"'),
        ("a\nb\n", '"""\n  a\n  b\n  """'),
        ("a\nb", '"""\n  a\n  b"""'),
        ("  indented\nfirst", '"""\n    indented\n  first"""'),
        ("  all\n  indented", r'"  all\n  indented"'),
        ('ends with quote"\nx"', r'"ends with quote\"\nx\""'),
    ],
)
def test_quote_chooses_the_plainest_exact_form(text: str, literal: str) -> None:
    assert quote(text, "  ") == literal
    assert decode_literal(literal) == text


def test_canonical_layout() -> None:
    models: list[Rule] = [
        GitSource(name="podinfo", url="https://github.com/o/r", ref=GitRef(branch="main", commit="abc"),
                  interval=timedelta(minutes=1, seconds=30), ignore="/*\n!/deploy\n", suspend=True),
        Kustomization(name="apps", namespace="team", source_ref=SourceRef("podinfo", "flux-system"),
                      prune=True, depends_on=(NamespacedRef("infra"),),
                      images=(ImageOverride("nginx", new_tag="1.2"),),
                      patches=(Patch("x: 1", Selector(kind="Deployment")),)),
        ImagePolicy(name="p", repository=NamespacedRef("r"), choice=PolicyChoice(PolicyKind.SEMVER, range=">=1"),
                    never_downgrade=True, hold=timedelta(hours=1), allow_rollback=True),
        ImageRepository(name="r", image="ghcr.io/o/r", exclusion_list=()),
    ]
    assert print_rules(models) == '''source git podinfo {
  url "https://github.com/o/r"
  branch "main"
  commit "abc"
  interval 1m30s
  ignore """
    /*
    !/deploy
    """
  suspend
}

kustomization team/apps {
  source git flux-system/podinfo
  prune true
  depends-on infra
  image "nginx" {
    new-tag "1.2"
  }
  patch "x: 1" {
    kind "Deployment"
  }
}

image policy p {
  repository r
  select highest semver ">=1"
  hold 1h
  never downgrade
  allow rollback
}

image repository r {
  image "ghcr.io/o/r"
  exclude none
}
'''


def test_defaults_are_left_out() -> None:
    text = print_rules([GitSource(name="a", url="u"), ImageUpdate(name="u", source_ref=SourceRef("s"),
                                                                  author=CommitAuthor("", "bot@x.io"))])
    assert text == 'source git a {\n  url "u"\n}\n\nimage update u {\n  source git s\n  author "<bot@x.io>"\n}\n'


def test_no_rules_print_as_nothing() -> None:
    assert print_rules([]) == ""


# --- Canonical form of parsed files ---------------------------------------------------------

_FENCE = re.compile(r"^```rules\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_canonical_form_of_the_docs_examples_parses_to_the_same_rules() -> None:
    written = "\n".join(_FENCE.findall(DOCS.read_text(encoding="utf-8")))
    parsed = reparse(written)
    canonical = print_rules(parsed)
    assert canonical != written
    assert reparse(canonical) == parsed
    assert print_rules(reparse(canonical)) == canonical


def test_canonical_form_of_a_hand_written_file() -> None:
    written = r"""
# comments and layout are not kept; meaning is
source git   podinfo { url 'https://x' ; tag "v1" }
image repository podinfo {
  image "ghcr.io/o/podinfo"
  exclude '^.*\.sig$'   # the default, so it disappears
  provider generic      # the default too
}
image policy podinfo { repository podinfo; select highest semver '>=1.0.0'; filter "^v(?P<v>.*)$" extract "$v" }
"""
    parsed = reparse(written)
    canonical = print_rules(parsed)
    assert canonical == r"""source git podinfo {
  url "https://x"
  tag "v1"
}

image repository podinfo {
  image "ghcr.io/o/podinfo"
}

image policy podinfo {
  repository podinfo
  filter "^v(?P<v>.*)$" extract "$v"
  select highest semver ">=1.0.0"
}
"""
    assert reparse(canonical) == parsed
