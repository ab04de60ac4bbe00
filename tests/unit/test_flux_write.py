"""Writing Flux YAML like `flux export`, and the round trip model -> Flux -> model."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from hypothesis import HealthCheck as Health
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import Problems
from engine.model import (
    DEFAULT_EXCLUSION_LIST,
    FluxObject,
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
    MarkerDialect,
    NamespacedRef,
    Patch,
    PolicyChoice,
    PolicyKind,
    Rule,
    Selector,
    SourceRef,
    SubstituteFrom,
    TagFilter,
)
from engine.rules.flux import read_flux, write_flux
from tests.unit.carried_strategies import flux_fields


def round_trip(rules: list[Rule]) -> list[Rule]:
    problems = Problems()
    back = read_flux("out.yaml", write_flux(rules), problems)
    assert problems.errors == [], [p.render(excerpt=False) for p in problems]
    return back


# -- the exact form -----------------------------------------------------------------------------


def test_git_source_is_written_as_flux_export_does() -> None:
    source = GitSource(
        "flux-system", "ssh://git@github.com/t-eckert/homelab", ref=GitRef(branch="main"),
        interval=timedelta(minutes=1), secret_ref="flux-system",
    )
    assert write_flux([source]) == (
        "---\n"
        "apiVersion: source.toolkit.fluxcd.io/v1\n"
        "kind: GitRepository\n"
        "metadata:\n"
        "  name: flux-system\n"
        "  namespace: flux-system\n"
        "spec:\n"
        "  interval: 1m0s\n"
        "  ref:\n"
        "    branch: main\n"
        "  secretRef:\n"
        "    name: flux-system\n"
        "  url: ssh://git@github.com/t-eckert/homelab\n"
    )


def test_kustomization_writes_prune_even_when_false_and_omits_defaults() -> None:
    ks = Kustomization("apps", SourceRef("flux-system"), path="./apps", interval=timedelta(hours=1, minutes=30))
    assert write_flux([ks]) == (
        "---\n"
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\n"
        "kind: Kustomization\n"
        "metadata:\n"
        "  name: apps\n"
        "  namespace: flux-system\n"
        "spec:\n"
        "  interval: 1h30m0s\n"
        "  path: ./apps\n"
        "  prune: false\n"
        "  sourceRef:\n"
        "    kind: GitRepository\n"
        "    name: flux-system\n"
    )


def test_gitward_only_fields_become_annotations() -> None:
    policy = ImagePolicy(
        "web", NamespacedRef("web"), PolicyChoice(PolicyKind.ALPHABETICAL, Direction.LOWEST),
        namespace="apps", hold=timedelta(hours=1), never_downgrade=True, pin="1.2.3",
        allow_rollback=True,
    )
    repo = ImageRepository("web", "ghcr.io/acme/web", namespace="apps", page_size=50)
    docs = list(yaml.safe_load_all(write_flux([policy, repo])))
    assert docs[0]["metadata"] == {
        "annotations": {"gitward.dev/allow-rollback": "true", "gitward.dev/hold": "1h0m0s",
                        "gitward.dev/never-downgrade": "true", "gitward.dev/pin": "1.2.3"},
        "name": "web",
        "namespace": "apps",
    }
    assert docs[0]["spec"]["policy"] == {"alphabetical": {"order": "desc"}}
    assert docs[1]["metadata"]["annotations"] == {"gitward.dev/page-size": "50"}
    assert "exclusionList" not in docs[1]["spec"] and "provider" not in docs[1]["spec"]
    assert round_trip([policy, repo]) == [policy, repo]


def test_multi_line_strings_are_literal_blocks() -> None:
    update = ImageUpdate(
        "auto", SourceRef("flux-system"), CommitAuthor("bot", "bot@example.com"),
        message_template="Update images\n\n{{ range .Changed.Changes }}{{ .NewValue }}\n{{ end }}",
        push_branch="main",
    )
    text = write_flux([update])
    assert "      messageTemplate: |-\n        Update images\n\n        {{ range .Changed.Changes }}" in text
    assert round_trip([update]) == [update]


def test_timeouts_are_written_without_hours() -> None:
    source = GitSource("a", "https://example.com/a", timeout=timedelta(hours=1, minutes=30, seconds=5))
    assert "  timeout: 90m5s\n" in write_flux([source])
    assert round_trip([source]) == [source]


def test_default_message_template_and_update_strategy() -> None:
    update = ImageUpdate("auto", SourceRef("flux-system"), CommitAuthor("", "bot@example.com"))
    spec = yaml.safe_load(write_flux([update]))["spec"]
    assert spec["git"] == {"commit": {"author": {"email": "bot@example.com"}}}
    assert spec["update"] == {"strategy": "Setters"}


def test_marker_dialects_are_skipped_and_nothing_is_empty() -> None:
    assert write_flux([MarkerDialect("yaml", ("*.yaml",))]) == ""
    assert write_flux([]) == ""


def test_homelab_round_trips(homelab_corpus: Path) -> None:
    problems = Problems()
    rules: list[Rule] = []
    for path in sorted(homelab_corpus.rglob("*.yaml")):
        rules.extend(r for r in read_flux(str(path), path.read_text(encoding="utf-8"), problems)
                     if not isinstance(r, FluxObject))
    assert problems.errors == []
    assert len(rules) == 10
    assert round_trip(rules) == rules


# -- round trip of every model object ---------------------------------------------------------

NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
WORDS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
MULTILINE = st.lists(TEXT, max_size=4).map("\n".join)
MILLIS = st.integers(0, 10**9).map(lambda ms: timedelta(milliseconds=ms))
MAPS = st.dictionaries(WORDS, TEXT, max_size=3).map(lambda d: tuple(d.items()))
GIT_REFS = st.builds(GitRef, branch=TEXT, tag=TEXT, semver=TEXT, name=TEXT, commit=TEXT)
SELECTORS = st.builds(
    Selector, group=TEXT, version=TEXT, kind=TEXT, name=TEXT, namespace=TEXT,
    label_selector=TEXT, annotation_selector=TEXT,
)
URLS = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["https", "http", "ssh"]), st.from_regex(r"[a-z]{1,8}\.example", fullmatch=True), TEXT,
)
IMAGES = st.from_regex(r"([a-z0-9]{1,6}(\.[a-z]{2,3})?(:[0-9]{2,4})?/)?[a-z0-9]{1,8}(/[a-z0-9._-]{1,8}){0,2}", fullmatch=True)

GIT_SOURCES = st.builds(
    GitSource, name=NAMES, url=URLS, namespace=NAMES, ref=GIT_REFS, interval=MILLIS, timeout=MILLIS,
    secret_ref=TEXT, proxy_secret_ref=TEXT, ignore=MULTILINE, suspend=st.booleans(),
    recurse_submodules=st.booleans(), flux_fields=flux_fields(GitSource),
)
KUSTOMIZATIONS = st.builds(
    Kustomization,
    name=NAMES,
    source_ref=st.builds(SourceRef, name=WORDS, namespace=TEXT),
    namespace=NAMES,
    path=TEXT,
    interval=MILLIS,
    retry_interval=st.none() | MILLIS,
    timeout=st.none() | MILLIS,
    prune=st.booleans(), wait=st.booleans(), force=st.booleans(), suspend=st.booleans(),
    target_namespace=TEXT, name_prefix=TEXT, name_suffix=TEXT, service_account_name=TEXT,
    depends_on=st.lists(st.builds(NamespacedRef, name=WORDS, namespace=TEXT), max_size=2).map(tuple),
    common_labels=MAPS, common_annotations=MAPS,
    images=st.lists(st.builds(ImageOverride, name=WORDS, new_name=TEXT, new_tag=TEXT, digest=TEXT), max_size=2).map(tuple),
    patches=st.lists(st.builds(Patch, patch=MULTILINE, target=st.none() | SELECTORS), max_size=2).map(tuple),
    substitute=MAPS,
    substitute_from=st.lists(
        st.builds(SubstituteFrom, kind=st.sampled_from(["ConfigMap", "Secret"]), name=WORDS, optional=st.booleans()),
        max_size=2,
    ).map(tuple),
    health_checks=st.lists(
        st.builds(HealthCheck, api_version=TEXT, kind=WORDS, name=WORDS, namespace=TEXT), max_size=2
    ).map(tuple),
    components=st.lists(TEXT, max_size=2).map(tuple),
    flux_fields=flux_fields(Kustomization),
)
IMAGE_REPOSITORIES = st.builds(
    ImageRepository, name=NAMES, image=IMAGES, namespace=NAMES, interval=MILLIS, timeout=st.none() | MILLIS,
    secret_ref=TEXT, cert_secret_ref=TEXT, proxy_secret_ref=TEXT, service_account_name=TEXT,
    provider=st.sampled_from(["generic", "aws", "azure", "gcp"]), insecure=st.booleans(), suspend=st.booleans(),
    exclusion_list=st.just(DEFAULT_EXCLUSION_LIST) | st.lists(TEXT, min_size=1, max_size=25).map(tuple),
    page_size=st.integers(1, 1_000_000),
    flux_fields=flux_fields(ImageRepository),
)
CHOICES = st.builds(PolicyChoice, kind=st.just(PolicyKind.SEMVER), range=TEXT) | st.builds(
    PolicyChoice, kind=st.sampled_from([PolicyKind.ALPHABETICAL, PolicyKind.NUMERICAL]),
    direction=st.sampled_from(list(Direction)),
)
REFLECTION = st.tuples(st.sampled_from([DigestReflection.NEVER, DigestReflection.IF_NOT_PRESENT]), st.none()) | st.tuples(
    st.just(DigestReflection.ALWAYS), MILLIS
)
IMAGE_POLICIES = st.builds(
    lambda reflection, **kw: ImagePolicy(digest_reflection=reflection[0], interval=reflection[1], **kw),
    REFLECTION,
    name=NAMES, repository=st.builds(NamespacedRef, name=WORDS, namespace=TEXT), choice=CHOICES,
    namespace=NAMES, filter=st.none() | st.builds(TagFilter, pattern=TEXT, extract=TEXT),
    suspend=st.booleans(), hold=st.none() | MILLIS, never_downgrade=st.booleans(), pin=TEXT,
    allow_rollback=st.booleans(),
    flux_fields=flux_fields(ImagePolicy),
)
IMAGE_UPDATES = st.builds(
    ImageUpdate, name=NAMES, source_ref=st.builds(SourceRef, name=WORDS, namespace=TEXT),
    author=st.builds(CommitAuthor, name=TEXT, email=WORDS), namespace=NAMES, interval=MILLIS,
    suspend=st.booleans(), path=TEXT, checkout_ref=st.none() | GIT_REFS, message_template=WORDS | MULTILINE.filter(bool),
    message_template_values=MAPS, push_branch=TEXT,
    push_refspec=TEXT.filter(lambda s: s[:1] not in ("+", ":")), push_options=MAPS, policy_selector=MAPS,
    signing_key_secret=TEXT, flux_fields=flux_fields(ImageUpdate),
)
ANY_RULE = st.one_of(GIT_SOURCES, KUSTOMIZATIONS, IMAGE_REPOSITORIES, IMAGE_POLICIES, IMAGE_UPDATES)


@settings(max_examples=300, deadline=None, suppress_health_check=[Health.too_slow])
@given(ANY_RULE)
def test_every_model_object_round_trips(rule: Rule) -> None:
    assert round_trip([rule]) == [rule]


@settings(max_examples=50, deadline=None, suppress_health_check=[Health.too_slow])
@given(st.lists(ANY_RULE, max_size=5))
def test_files_of_several_objects_round_trip_in_order(rules: list[Rule]) -> None:
    assert round_trip(rules) == rules
