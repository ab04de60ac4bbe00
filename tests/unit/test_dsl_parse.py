"""The rules DSL reader: every statement and field, strings, names, and the docs' examples."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import timedelta
from pathlib import Path

import pytest

from engine.errors import Problems
from engine.model import (
    DEFAULT_EXCLUSION_LIST,
    Alert,
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
    MarkerValue,
    NamespacedRef,
    OCISource,
    Patch,
    PolicyChoice,
    PolicyKind,
    Rule,
    Selector,
    SourceRef,
    SubstituteFrom,
    TagFilter,
)
from engine.rules import parse
from engine.rules.fluxapi import IGNORED_FIELD
from engine.rules.parse import decode_literal, parse_rules

DOCS = Path(__file__).resolve().parents[2] / "docs" / "dsl.md"


def parse_ok(text: str, ignored: Collection[str] | None = ()) -> list[Rule]:
    """The rules of `text`, which must read without a problem but warnings that gitward does not
    act on the fields named in `ignored` (None: any such warning), each kept on its rule."""
    problems = Problems()
    rules = parse_rules("test.rules", text, problems)
    said = [p for p in problems if p.code == IGNORED_FIELD]
    assert [p.render(excerpt=False) for p in problems if p not in said] == []
    if ignored is not None:
        assert sorted(p.message.split(":")[0] for p in said) == sorted(ignored)
    assert sorted(map(str, said)) == sorted(str(p) for r in rules for p in getattr(r, "ignored", ()))
    return rules


def parse_one(text: str, ignored: Collection[str] = ()) -> Rule:
    rules = parse_ok(text, ignored)
    assert len(rules) == 1
    return rules[0]


# --- Statements -----------------------------------------------------------------------------


def test_source_git_minimal_takes_flux_defaults_and_branch_main() -> None:
    rule = parse_one('source git podinfo {\n  url "https://github.com/o/r"\n}\n')
    assert rule == GitSource(name="podinfo", url="https://github.com/o/r")
    assert rule.namespace == "flux-system"
    assert rule.ref == GitRef(branch="main")


def test_source_git_every_field() -> None:
    text = """
source git apps/podinfo {
  url "ssh://git@github.com/o/r"
  tag "v1.0.0"
  commit "0123abcd"
  interval 10m
  timeout 90s
  secret "deploy-key"
  ignore "/*"
  suspend
  recurse-submodules true
}
"""
    assert parse_one(text) == GitSource(
        name="podinfo",
        namespace="apps",
        url="ssh://git@github.com/o/r",
        ref=GitRef(tag="v1.0.0", commit="0123abcd"),
        interval=timedelta(minutes=10),
        timeout=timedelta(seconds=90),
        secret_ref="deploy-key",
        ignore="/*",
        suspend=True,
        recurse_submodules=True,
    )


@pytest.mark.parametrize(
    ("line", "ref"),
    [
        ('branch "dev"', GitRef(branch="dev")),
        ('tag "v1"', GitRef(tag="v1")),
        ('semver ">=1.0.0"', GitRef(semver=">=1.0.0")),
        ('refname "refs/pull/1/head"', GitRef(name="refs/pull/1/head")),
        ('commit "abc"', GitRef(commit="abc")),
    ],
)
def test_source_git_reference_fields(line: str, ref: GitRef) -> None:
    rule = parse_one(f'source git s {{\n  url "u"\n  {line}\n}}')
    assert isinstance(rule, GitSource)
    assert rule.ref == ref


def test_kustomization_every_field() -> None:
    text = '''
kustomization apps/podinfo {
  source git flux-system/podinfo
  path "./kustomize"
  interval 5m
  retry-interval 1m
  timeout 3m
  prune true
  wait true
  force true
  suspend false
  target-namespace "web"
  name-prefix "p-"
  name-suffix "-s"
  service-account "deployer"
  depends-on infra flux-system/crds
  depends-on other
  label "team" "platform"
  label "tier" "web"
  annotation "owner" "ops"
  image "nginx" { new-name "my/nginx"  new-tag "1.2"  digest "sha256:00" }
  image "redis"
  patch """
    kind: Deployment
  """ {
    group "apps"; version "v1"
    kind "Deployment"
    name "podinfo" namespace "web"
    label-selector "a=b"
    annotation-selector "c=d"
  }
  patch "- op: remove" {}
  patch "x: 1"
  substitute "env" "prod"
  substitute-from configmap "vars"
  substitute-from secret "secret-vars" optional
  health-check "apps/v1" Deployment web/podinfo
  health-check "v1" Service podinfo
  component "../components/a"
  component "../components/b"
}
'''
    assert parse_one(text) == Kustomization(
        name="podinfo",
        namespace="apps",
        source_ref=SourceRef("podinfo", "flux-system"),
        path="./kustomize",
        interval=timedelta(minutes=5),
        retry_interval=timedelta(minutes=1),
        timeout=timedelta(minutes=3),
        prune=True,
        wait=True,
        force=True,
        suspend=False,
        target_namespace="web",
        name_prefix="p-",
        name_suffix="-s",
        service_account_name="deployer",
        depends_on=(NamespacedRef("infra"), NamespacedRef("crds", "flux-system"), NamespacedRef("other")),
        common_labels=(("team", "platform"), ("tier", "web")),
        common_annotations=(("owner", "ops"),),
        images=(ImageOverride("nginx", "my/nginx", "1.2", "sha256:00"), ImageOverride("redis")),
        patches=(
            Patch(
                "kind: Deployment\n",
                Selector("apps", "v1", "Deployment", "podinfo", "web", "a=b", "c=d"),
            ),
            Patch("- op: remove", Selector()),
            Patch("x: 1"),
        ),
        substitute=(("env", "prod"),),
        substitute_from=(SubstituteFrom("ConfigMap", "vars"), SubstituteFrom("Secret", "secret-vars", True)),
        health_checks=(
            HealthCheck("apps/v1", "Deployment", "podinfo", "web"),
            HealthCheck("v1", "Service", "podinfo"),
        ),
        components=("../components/a", "../components/b"),
    )


def test_image_repository_every_field() -> None:
    text = r"""
image repository podinfo {
  image "ghcr.io/o/podinfo"
  interval 10m
  timeout 1m
  secret "pull"
  cert-secret "certs"
  proxy-secret "proxy"
  service-account "scanner"
  provider azure
  insecure true
  suspend
  exclude "^.*\.sig$" "^sha-[a-f0-9]+$"
  exclude '^.*-rc\.\d+$'
  page-size 100
}
"""
    assert parse_one(text, ignored=("provider", "service-account")) == ImageRepository(
        name="podinfo",
        image="ghcr.io/o/podinfo",
        interval=timedelta(minutes=10),
        timeout=timedelta(minutes=1),
        secret_ref="pull",
        cert_secret_ref="certs",
        proxy_secret_ref="proxy",
        service_account_name="scanner",
        provider="azure",
        insecure=True,
        suspend=True,
        exclusion_list=(r"^.*\.sig$", r"^sha-[a-f0-9]+$", r"^.*-rc\.\d+$"),
        page_size=100,
    )


def test_image_repository_exclude_replaces_the_default_and_none_empties_it() -> None:
    plain = parse_one('image repository a { image "x" }')
    assert isinstance(plain, ImageRepository)
    assert plain.exclusion_list == DEFAULT_EXCLUSION_LIST
    given = parse_one('image repository a { image "x"; exclude "^v" }')
    assert isinstance(given, ImageRepository)
    assert given.exclusion_list == ("^v",)
    empty = parse_one('image repository a { image "x"; exclude none }')
    assert isinstance(empty, ImageRepository)
    assert empty.exclusion_list == ()


def test_image_policy_every_field() -> None:
    text = """
image policy apps/podinfo {
  repository registry/podinfo
  filter "^(?P<ts>[0-9]{8})-.*$" extract "$ts"
  select highest alphabetical
  digest always
  interval 10m
  suspend true
  hold 1h30m
  never downgrade
  pin "20240101-1200"
  allow rollback
}
"""
    assert parse_one(text, ignored=("interval",)) == ImagePolicy(
        name="podinfo",
        namespace="apps",
        repository=NamespacedRef("podinfo", "registry"),
        filter=TagFilter("^(?P<ts>[0-9]{8})-.*$", "$ts"),
        choice=PolicyChoice(PolicyKind.ALPHABETICAL, Direction.HIGHEST),
        digest_reflection=DigestReflection.ALWAYS,
        interval=timedelta(minutes=10),
        suspend=True,
        hold=timedelta(hours=1, minutes=30),
        never_downgrade=True,
        pin="20240101-1200",
        allow_rollback=True,
    )


@pytest.mark.parametrize(
    ("line", "choice"),
    [
        ('select highest semver ">=1.0.0 <2.0.0"', PolicyChoice(PolicyKind.SEMVER, Direction.HIGHEST, ">=1.0.0 <2.0.0")),
        ("select highest alphabetical", PolicyChoice(PolicyKind.ALPHABETICAL, Direction.HIGHEST)),
        ("select lowest alphabetical", PolicyChoice(PolicyKind.ALPHABETICAL, Direction.LOWEST)),
        ("select highest numerical", PolicyChoice(PolicyKind.NUMERICAL, Direction.HIGHEST)),
        ("select lowest numerical", PolicyChoice(PolicyKind.NUMERICAL, Direction.LOWEST)),
    ],
)
def test_image_policy_select(line: str, choice: PolicyChoice) -> None:
    rule = parse_one(f"image policy p {{\n  repository r\n  {line}\n}}")
    assert isinstance(rule, ImagePolicy)
    assert rule.choice == choice
    assert rule.filter is None


def test_select_direction_maps_to_flux_order() -> None:
    lowest = parse_one("image policy p { repository r; select lowest numerical }")
    assert isinstance(lowest, ImagePolicy)
    assert lowest.choice.direction.flux_order == "desc"
    assert Direction.from_flux_order("asc") is Direction.HIGHEST


@pytest.mark.parametrize(
    ("word", "digest"),
    [("never", DigestReflection.NEVER), ("if-not-present", DigestReflection.IF_NOT_PRESENT)],
)
def test_image_policy_digest_words(word: str, digest: DigestReflection) -> None:
    rule = parse_one(f"image policy p {{ repository r; select lowest numerical; digest {word} }}")
    assert isinstance(rule, ImagePolicy)
    assert rule.digest_reflection is digest


def test_image_update_every_field() -> None:
    text = '''
image update flux-system {
  source git flux-system
  path "./cluster"
  interval 30m
  suspend
  checkout branch "main"
  checkout commit "abc"
  author "Flux Bot <flux@example.com>"
  message """
    Update images

    {{ range .Changed.Changes }}{{ .NewValue }}{{ end }}
  """
  message-value "env" "prod"
  push "auto"
  push-refspec "refs/heads/main:refs/heads/auto"
  push-option "ci.skip" ""
  policy-selector "automation" "on"
  signing-key "gpg"
}
'''
    assert parse_one(text, ignored=("checkout",)) == ImageUpdate(
        name="flux-system",
        source_ref=SourceRef("flux-system"),
        author=CommitAuthor("Flux Bot", "flux@example.com"),
        path="./cluster",
        interval=timedelta(minutes=30),
        suspend=True,
        checkout_ref=GitRef(branch="main", commit="abc"),
        message_template="Update images\n\n{{ range .Changed.Changes }}{{ .NewValue }}{{ end }}\n",
        message_template_values=(("env", "prod"),),
        push_branch="auto",
        push_refspec="refs/heads/main:refs/heads/auto",
        push_options=(("ci.skip", ""),),
        policy_selector=(("automation", "on"),),
        signing_key_secret="gpg",
    )


@pytest.mark.parametrize(
    ("author", "parsed"),
    [
        ("Flux <f@x.io>", CommitAuthor("Flux", "f@x.io")),
        ("  Spaced  Name   <f@x.io> ", CommitAuthor("Spaced  Name", "f@x.io")),
        ("<bot@x.io>", CommitAuthor("", "bot@x.io")),
    ],
)
def test_image_update_author(author: str, parsed: CommitAuthor) -> None:
    rule = parse_one(f'image update u {{ source git s; author "{author}" }}')
    assert isinstance(rule, ImageUpdate)
    assert rule.author == parsed
    assert rule.checkout_ref is None


def test_marker_dialect() -> None:
    text = r"""
marker dialect dockerfile {
  files "Dockerfile" "*.Dockerfile"
  files "Containerfile"
  key "$image"
  comment "//"
  screen "$image"
  value regex "^FROM\s+(?P<value>\S+)"
}

marker dialect flux {
  files "*.yaml"
  value yaml-scalar
}
"""
    assert parse_ok(text) == [
        MarkerDialect(
            name="dockerfile",
            files=("Dockerfile", "*.Dockerfile", "Containerfile"),
            json_key="$image",
            comment="//",
            screen="$image",
            value=MarkerValue.REGEX,
            value_pattern=r"^FROM\s+(?P<value>\S+)",
        ),
        MarkerDialect(name="flux", files=("*.yaml",)),
    ]


# --- Names, references, layout --------------------------------------------------------------


def test_names_and_references_namespaces() -> None:
    rules = parse_ok("kustomization a { source git s }\nkustomization team/b { source git other/s; depends-on a }")
    assert [(r.namespace, r.name) for r in rules if isinstance(r, Kustomization)] == [
        ("flux-system", "a"),
        ("team", "b"),
    ]
    second = rules[1]
    assert isinstance(second, Kustomization)
    assert second.source_ref == SourceRef("s", "other")
    assert second.depends_on == (NamespacedRef("a", ""),)


def test_dotted_names_are_kubernetes_subdomains() -> None:
    rule = parse_one("image repository app.v2 { image \"x\" }")
    assert rule.name == "app.v2"


def test_comments_separators_and_statements_sharing_lines() -> None:
    text = """# a header comment
source git a { url "u#not-a-comment" }  # trailing comment
;;
source git b {   # after the brace
  # a full-line comment

  url "v" ;; interval 2m ;
}
"""
    rules = parse_ok(text)
    assert [(r.name, r.url) for r in rules if isinstance(r, GitSource)] == [("a", "u#not-a-comment"), ("b", "v")]
    assert rules[1] == GitSource(name="b", url="v", interval=timedelta(minutes=2))


def test_empty_and_comment_only_files_have_no_rules() -> None:
    assert parse_ok("") == []
    assert parse_ok("\n\n# nothing here\n") == []


def test_crlf_and_byte_order_mark() -> None:
    text = '\ufeffsource git a {\r\n  url "u"\r\n  ignore """\r\n    x\r\n  """\r\n}\r\n'
    rule = parse_one(text)
    assert isinstance(rule, GitSource)
    assert rule.ignore == "x\n"


def test_bare_boolean_keyword_means_true() -> None:
    rule = parse_one("kustomization a { source git s; prune; wait false; suspend }")
    assert isinstance(rule, Kustomization)
    assert (rule.prune, rule.wait, rule.suspend) == (True, False, True)


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("0s", timedelta(0)),
    ],
)
def test_durations(written: str, value: timedelta) -> None:
    rule = parse_one(f'source git a {{ url "u"; interval {written} }}')
    assert isinstance(rule, GitSource)
    assert rule.interval == value


# --- Strings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"plain"', "plain"),
        (r'""', ""),
        (r'"a\"b"', 'a"b'),
        (r'"back\\slash"', "back\\slash"),
        (r'"\n\t\r\/\b\f"', "\n\t\r/\b\f"),
        (r'"\u00e9\u20AC"', "é€"),
        (r'"\ud83d\ude00"', "\U0001f600"),
        (r'"^.*\.sig$"', r"^.*\.sig$"),
        (r'"\d+\s*\uZZ"', r"\d+\s*\uZZ"),
        (r"'raw\n\"'", r"raw\n\""),
        (r"''", ""),
        ('"""one line"""', "one line"),
        ('"""\n  a\n    b\n  """', "a\n  b\n"),
        ('"""\n  a\n  b"""', "a\nb"),
        ('"""\n    a\n\n    b\n"""', "a\n\nb\n"),
        ('"""say \\""" and \\n"""', 'say """ and \\n'),
        ('"""\n\n  a\n  """', "\na\n"),
        ('"""a "quoted" word"""', 'a "quoted" word'),
    ],
)
def test_string_literals(literal: str, value: str) -> None:
    assert decode_literal(literal) == value
    rule = parse_one(f"source git a {{\n  url {literal}\n}}")
    assert isinstance(rule, GitSource)
    assert rule.url == value


@pytest.mark.parametrize("text", ['"a" "b"', "word", '"unterminated', '"""a""""', "'a'b'", '"\\ud800"'])
def test_decode_literal_rejects_what_is_not_one_valid_literal(text: str) -> None:
    assert decode_literal(text) is None


# --- Origins --------------------------------------------------------------------------------


def test_origins_point_at_what_later_checks_report() -> None:
    text = 'image policy p {\n  repository r\n  filter "(" extract "$1"\n  select highest semver ">=x"\n}\n'
    rule = parse_one(text)
    assert isinstance(rule, ImagePolicy)
    assert rule.origin is not None and (rule.origin.line, rule.origin.column) == (1, 14)
    assert rule.origin.path == "test.rules" and rule.origin.syntax == "dsl"
    assert rule.filter is not None and rule.filter.origin is not None
    assert (rule.filter.origin.line, rule.filter.origin.column, rule.filter.origin.end_column) == (3, 10, 13)
    assert rule.choice.origin is not None and (rule.choice.origin.line, rule.choice.origin.column) == (4, 25)
    assert rule.repository.origin is not None and rule.repository.origin.line == 2


def test_origin_takes_no_part_in_equality() -> None:
    first = parse_one('source git a { url "u" }')
    second = parse_one('\n\n   source git a {\n url "u"\n}')
    assert first == second
    assert first.origin != second.origin


# --- The reference document -----------------------------------------------------------------

_FENCE = re.compile(r"^```rules\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _doc_examples() -> list[str]:
    return _FENCE.findall(DOCS.read_text(encoding="utf-8"))


def test_docs_have_examples() -> None:
    assert len(_doc_examples()) >= 7


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_every_docs_example_parses_without_problems(index: int) -> None:
    assert parse_ok(_doc_examples()[index], ignored=None)


def test_docs_show_every_statement_and_document_every_keyword() -> None:
    examples = "\n".join(_doc_examples())
    rules = parse_ok(examples, ignored=None)
    kinds = {type(rule) for rule in rules}
    assert kinds == {GitSource, OCISource, Kustomization, ImageRepository, ImagePolicy, ImageUpdate,
                     MarkerDialect, Alert}
    doc = DOCS.read_text(encoding="utf-8")
    for kind in parse._KINDS:
        assert f"### `{kind.label} NAME`" in doc
        for keyword in kind.fields:
            assert f"`{keyword}`" in doc or f"`{keyword} " in doc, f"{kind.label}: {keyword} undocumented"
