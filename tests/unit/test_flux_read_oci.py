"""Reading Flux OCIRepository sources (and Kustomizations that use them) into the model."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.errors import Problems
from engine.model import (
    Kustomization,
    LayerOperation,
    LayerSelector,
    OCIRef,
    OCISource,
    RuleSet,
    SourceKind,
    SourceRef,
)
from engine.rules.check import check_references
from engine.rules.flux import read_flux, write_flux
from engine.rules.parse import parse_rules
from engine.rules.printer import print_rules
from tests.conftest import ROOT, require_corpus

OCI = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: manifests
spec:
  interval: 10m
  url: oci://ghcr.io/acme/manifests
"""

KS = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
spec:
  interval: 10m
  prune: true
  sourceRef:
    kind: OCIRepository
    name: manifests
"""

REALWORLD = ROOT.parent / "shared" / "corpus" / "realworld"


def read(text: str) -> tuple[list[object], Problems]:
    problems = Problems()
    return list(read_flux("m.yaml", text, problems)), problems


def found(problems: Problems) -> list[tuple[str, str, int, int]]:
    return [(p.severity.value, p.message, p.pos.line if p.pos else 0, p.pos.column if p.pos else 0)
            for p in problems]


def test_defaults_follow_flux() -> None:
    rules, problems = read(OCI)
    assert found(problems) == []
    assert rules == [OCISource(name="manifests", url="oci://ghcr.io/acme/manifests",
                               interval=timedelta(minutes=10))]
    source = rules[0]
    assert isinstance(source, OCISource)
    assert source.ref == OCIRef() and source.ref.describe() == "tag latest"
    assert source.layer_selector == LayerSelector("", LayerOperation.EXTRACT)
    assert source.timeout == timedelta(seconds=60) and source.key.kind == "OCIRepository"


def test_every_field_is_read_in_v1_and_v1beta2() -> None:
    text = OCI + """\
  timeout: 2m
  ref:
    tag: v1
    semver: ">=1.0.0"
    semverFilter: ".*-rc.*"
    digest: sha256:""" + "a" * 64 + """
  layerSelector:
    mediaType: application/vnd.cncf.flux.content.v1.tar+gzip
    operation: copy
  secretRef: {name: pull}
  insecure: true
  suspend: true
  ignore: |
    /*
    !/deploy
"""
    for version in ("v1", "v1beta2"):
        rules, problems = read(text.replace("/v1\n", f"/{version}\n", 1))
        assert found(problems) == []
        source = rules[0]
        assert isinstance(source, OCISource)
        assert source.ref == OCIRef("v1", ">=1.0.0", ".*-rc.*", "sha256:" + "a" * 64)
        assert source.ref.describe() == "digest sha256:" + "a" * 64
        assert source.layer_selector == LayerSelector("application/vnd.cncf.flux.content.v1.tar+gzip",
                                                      LayerOperation.COPY)
        assert (source.secret_ref, source.insecure, source.suspend) == ("pull", True, True)
        assert source.ignore == "/*\n!/deploy\n" and source.timeout == timedelta(minutes=2)


def test_precedence_is_digest_then_semver_then_tag() -> None:
    assert OCIRef(tag="v1", semver="1.x").describe() == "semver 1.x"
    assert OCIRef(tag="v1", semver="1.x", semver_filter="^v").describe() == "semver 1.x matching '^v'"
    assert OCIRef(tag="v1").describe() == "tag v1"


def test_fields_gitward_cannot_honour_are_located_warnings_kept_on_the_source() -> None:
    text = OCI + """\
  provider: aws
  serviceAccountName: puller
  certSecretRef: {name: tls}
  verify:
    provider: cosign
"""
    rules, problems = read(text)
    said = [
        ("warning", "spec.provider: gitward gets no aws workload identity: gitward logs in with the "
                    "pull secret this object names (read from the cluster), else with docker's "
                    "config.json", 8, 13),
        ("warning", "spec.serviceAccountName: the ServiceAccount's image pull secrets are not read: "
                    "gitward logs in with the pull secret this object names (read from the cluster), "
                    "else with docker's config.json", 9, 23),
        ("warning", "spec.verify: cosign signatures are not verified by gitward: the artifact is "
                    "checked against the digests in its manifest only", 11, 3),
    ]
    assert found(problems) == said
    source = rules[0]
    assert isinstance(source, OCISource)
    assert (source.provider, source.service_account_name, source.cert_secret_ref) == ("aws", "puller", "tls")
    assert [(f.path, f.value) for f in source.flux_fields] == [("spec.verify", '{"provider":"cosign"}')]
    assert [(p.severity.value, p.message, p.pos.line, p.pos.column) for p in source.ignored
            if p.pos is not None] == said

BAD = [
    ("no-scheme", OCI.replace("oci://", "https://"),
     "spec.url: must be in the format oci://<host>/<org>/<repo>", 7, 8),
    ("tag-in-url", OCI.replace("acme/manifests", "acme/manifests:v1"),
     "spec.url: must not contain a tag; remove ':v1' and set spec.ref.tag", 7, 8),
    ("digest-in-url", OCI.replace("acme/manifests", "acme/manifests@sha256:abc"),
     "spec.url: must not contain a digest; remove '@sha256:abc' and set spec.ref.digest", 7, 8),
    ("host-only", OCI.replace("ghcr.io/acme/manifests", "ghcr.io"),
     "spec.url: must be in the format oci://<host>/<org>/<repo>", 7, 8),
    ("bad-digest", OCI + "  ref:\n    digest: sha256:xyz\n",
     'spec.ref.digest: "sha256:xyz" is not a digest: expected sha256: and 64 hex digits', 9, 13),
    ("bad-semver", OCI + "  ref:\n    semver: '>>1'\n",
     'spec.ref.semver: invalid semver range ">>1": improper constraint: ">>1"', 9, 13),
    ("bad-filter", OCI + "  ref:\n    semver: 1.x\n    semverFilter: '(('\n",
     'spec.ref.semverFilter: invalid regex "((": missing ): ((', 10, 19),
    ("bad-operation", OCI + "  layerSelector:\n    operation: unpack\n",
     'spec.layerSelector.operation: must be one of extract, copy, got "unpack"', 9, 16),
    ("bad-provider", OCI + "  provider: gcr\n",
     'spec.provider: must be one of generic, aws, azure, gcp, got "gcr" (did you mean "gcp"?)', 8, 13),
    ("missing-interval", OCI.replace("  interval: 10m\n", ""), "spec.interval is required", 5, 1),
    ("unknown-field", OCI + "  layerselector: {}\n",
     'unknown field "layerselector" in spec (did you mean "layerSelector"?)', 8, 3),
    ("v1beta1", OCI.replace("/v1\n", "/v1beta1\n", 1),
     "OCIRepository is not served as source.toolkit.fluxcd.io/v1beta1: use "
     "source.toolkit.fluxcd.io/v1 (or v1beta2)", 2, 1),
]


@pytest.mark.parametrize("text, message, line, column", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_is_a_located_error(text: str, message: str, line: int, column: int) -> None:
    rules, problems = read(text)
    assert found(problems) == [("error", message, line, column)]
    assert rules == []


def test_credentials_in_the_url_are_not_repeated() -> None:
    rules, problems = read(OCI.replace("oci://", "oci://bob:s3cret@"))
    assert rules == []
    assert found(problems) == [("error", "spec.url (line 7) carries credentials: put them in the "
                                         "Secret named by spec.secretRef", 5, 1)]
    assert "s3cret" not in problems.errors[0].message


def test_a_filter_without_semver_warns() -> None:
    _, problems = read(OCI + "  ref:\n    tag: v1\n    semverFilter: '^v'\n")
    assert found(problems) == [("warning", "spec.ref.semverFilter: has no effect without spec.ref.semver",
                                10, 5)]


def test_kustomization_may_name_an_oci_source_and_references_resolve_by_kind() -> None:
    rules, problems = read(OCI + "---\n" + KS)
    assert found(problems) == []
    ks = next(r for r in rules if isinstance(r, Kustomization))
    assert ks.source_ref == SourceRef("manifests", "", SourceKind.OCI_REPOSITORY)
    ruleset = RuleSet.of(rules)  # type: ignore[arg-type]
    assert ruleset.oci_sources and ruleset.get(ruleset.oci_sources[0].key) is ruleset.oci_sources[0]
    check = Problems()
    check_references(ruleset, check)
    assert check.errors == []
    # A GitRepository of the same name does not satisfy an OCIRepository reference.
    git_only = RuleSet.of([ks])
    check = Problems()
    check_references(git_only, check)
    assert [p.message for p in check.errors] == [
        "Kustomization flux-system/apps refers to OCIRepository flux-system/manifests, which is not defined"]


def test_an_image_update_still_needs_a_git_repository() -> None:
    update = """\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: auto
spec:
  interval: 5m
  sourceRef:
    kind: OCIRepository
    name: app
  git:
    commit:
      author:
        email: bot@example.com
"""
    _, problems = read(update)
    assert found(problems) == [("error", 'spec.sourceRef.kind: must be GitRepository, got "OCIRepository"', 8, 11)]


def test_oci_sources_round_trip_through_flux_yaml_and_the_dsl() -> None:
    text = OCI + "  ref:\n    semver: 1.x\n    semverFilter: ^v\n  layerSelector:\n    operation: copy\n"
    rules, problems = read(text + "---\n" + KS)
    assert found(problems) == []
    again, problems = read(write_flux(rules))  # type: ignore[arg-type]
    assert found(problems) == [] and again == rules
    printed = print_rules(rules)  # type: ignore[arg-type]
    assert printed == (
        'source oci manifests {\n  url "oci://ghcr.io/acme/manifests"\n  semver "1.x"\n'
        '  semver-filter "^v"\n  interval 10m\n  layer "" copy\n}\n\n'
        "kustomization apps {\n  source oci manifests\n  prune true\n}\n"
    )
    problems = Problems()
    assert parse_rules("m.rules", printed, problems) == rules and not problems.items


@pytest.mark.parametrize("relative", [
    "bjw-s__home-ops/kubernetes/main/flux/config/flux.yaml",
    "MTRNord__cluster/apps/talos_cluster/flagger/repository.yaml",
    "fluxcd__flux2-multi-tenancy/infrastructure/kyverno/source.yaml",
])
def test_real_world_oci_repositories_read_without_errors(relative: str) -> None:
    path = REALWORLD / relative
    require_corpus(path.is_file(), f"the real-world corpus is absent ({path})")
    problems = Problems()
    rules = read_flux(relative, path.read_text(encoding="utf-8"), problems)
    assert problems.errors == []
    assert any(isinstance(r, OCISource) for r in rules)
