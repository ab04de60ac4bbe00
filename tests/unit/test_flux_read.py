"""Reading Flux manifests into the model: every version users have, defaults, located problems."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck as Health
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import GitwardError, Problems, Severity
from engine.model import (
    DEFAULT_COMMIT_MESSAGE,
    DEFAULT_EXCLUSION_LIST,
    FluxObject,
    DigestReflection,
    Direction,
    GitRef,
    GitSource,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
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
from engine.rules.flux import read_flux

GIT = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: app
spec:
  interval: 1m
  url: https://example.com/app.git
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
    kind: GitRepository
    name: app
"""

POLICY = """\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: web
spec:
  imageRepositoryRef:
    name: web
  policy:
    semver:
      range: ">=1.0.0"
"""

REPO = """\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: web
spec:
  image: ghcr.io/acme/web
  interval: 5m
"""

UPDATE = """\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: auto
spec:
  interval: 5m
  sourceRef:
    kind: GitRepository
    name: app
  git:
    commit:
      author:
        email: bot@example.com
"""


def read(text: str, path: str = "m.yaml") -> tuple[list[Rule], Problems]:
    problems = Problems()
    return read_flux(path, text, problems), problems


def read_one(text: str) -> Rule:
    rules, problems = read(text)
    assert not problems.errors, [p.render(excerpt=False) for p in problems]
    assert len(rules) == 1
    return rules[0]


def messages(problems: Problems) -> list[str]:
    return [p.render(excerpt=False) for p in problems]


# -- the real repository ----------------------------------------------------------------------


def load_corpus(root: Path) -> tuple[list[Rule], Problems]:
    problems = Problems()
    rules: list[Rule] = []
    for path in sorted(root.rglob("*.yaml")):
        rules.extend(read_flux(str(path.relative_to(root)), path.read_text(encoding="utf-8"), problems))
    return rules, problems


def test_homelab_loads_every_flux_object_without_error(homelab_corpus: Path) -> None:
    rules, problems = load_corpus(homelab_corpus)
    assert problems.errors == []
    assert problems.warnings == []
    kinds = sorted(r.KIND if isinstance(r, FluxObject) else type(r).__name__ for r in rules)
    assert kinds == [
        "GitSource", "HelmRelease", "HelmRepository", "ImagePolicy", "ImagePolicy", "ImagePolicy", "ImageRepository",
        "ImageRepository", "ImageRepository", "ImageUpdate", "ImageUpdate", "Kustomization",
    ]


def test_homelab_git_source(homelab_corpus: Path) -> None:
    rules, _ = load_corpus(homelab_corpus)
    source = next(r for r in rules if isinstance(r, GitSource))
    assert source.key.ref == "flux-system/flux-system"
    assert source.url == "ssh://git@github.com/t-eckert/homelab"
    assert source.ref == GitRef(branch="main")
    assert source.interval == timedelta(minutes=1)
    assert source.secret_ref == "flux-system"
    assert source.origin is not None
    assert (source.origin.path, source.origin.line, source.origin.syntax) == (
        "cluster/system/flux-system/gotk-sync.yaml", 4, "flux",
    )


def test_homelab_policies(homelab_corpus: Path) -> None:
    rules, _ = load_corpus(homelab_corpus)
    policies = {r.name: r for r in rules if isinstance(r, ImagePolicy)}
    bluesync = policies["bluesync"]
    assert bluesync.choice == PolicyChoice(PolicyKind.ALPHABETICAL, Direction.LOWEST)
    assert bluesync.filter == TagFilter("^(?P<ts>[0-9]{8})-[0-9]{4}-sha-[a-f0-9]{7}$", "$ts")
    assert bluesync.repository == NamespacedRef("bluesync")
    assert bluesync.repository_key.ref == "field-theories/bluesync"
    uptime = policies["uptime-kuma"]
    assert uptime.choice == PolicyChoice(PolicyKind.SEMVER, Direction.HIGHEST, ">=2.0.0 <3.0.0")
    assert uptime.origin is not None and uptime.origin.path == "cluster/apps/uptime-kuma/image-policy.yaml"
    assert policies["field-theories"].choice == PolicyChoice(PolicyKind.NUMERICAL, Direction.HIGHEST)


def test_homelab_repositories_and_updates(homelab_corpus: Path) -> None:
    rules, _ = load_corpus(homelab_corpus)
    repos = {r.name: r for r in rules if isinstance(r, ImageRepository)}
    assert repos["bluesync"].exclusion_list == (r"^.*\.sig$", "^sha-[a-f0-9]+$")
    assert repos["uptime-kuma"].exclusion_list == DEFAULT_EXCLUSION_LIST
    assert repos["uptime-kuma"].image == "louislam/uptime-kuma"
    updates = {u.name: u for u in rules if isinstance(u, ImageUpdate)}
    main = updates["flux-system"]
    assert main.checkout_ref == GitRef(branch="main")
    assert main.message_template == "Update container images\n\nAutomation: field-theories\n"
    assert main.path == "./cluster" and main.push_branch == "main"
    assert main.author.email == "fluxcdbot@users.noreply.github.com"
    assert updates["bluesync"].source_ref == SourceRef("flux-system", "flux-system")


# -- defaults and version forms ---------------------------------------------------------------


def test_git_repository_defaults() -> None:
    source = read_one(GIT)
    assert isinstance(source, GitSource)
    assert source.ref == GitRef(branch="master")  # Flux's default, not the model's
    assert source.namespace == "flux-system"
    assert source.timeout == timedelta(seconds=60)


def test_git_repository_v1beta1_and_v1beta2_read_the_same() -> None:
    v1 = read_one(GIT)
    for version in ("v1beta2", "v1beta1"):
        assert read_one(GIT.replace("/v1\n", f"/{version}\n", 1)) == v1


def test_beta_git_fields_are_warnings() -> None:
    text = GIT.replace("/v1\n", "/v1beta2\n", 1) + "  gitImplementation: go-git\n"
    rules, problems = read(text)
    assert len(rules) == 1
    assert messages(problems) == ["m.yaml:8:3: warning: spec.gitImplementation is ignored by gitward (deprecated by Flux)"]


def test_exclusion_list_empty_means_default_and_a_list_replaces_it() -> None:
    empty = read_one(REPO + "  exclusionList: []\n")
    given_list = read_one(REPO + "  exclusionList: ['^dev-']\n")
    assert isinstance(empty, ImageRepository) and isinstance(given_list, ImageRepository)
    assert empty.exclusion_list == DEFAULT_EXCLUSION_LIST
    assert given_list.exclusion_list == ("^dev-",)


def test_policy_order_maps_to_direction() -> None:
    asc = read_one(POLICY.replace('semver:\n      range: ">=1.0.0"', "alphabetical:\n      order: asc"))
    desc = read_one(POLICY.replace('semver:\n      range: ">=1.0.0"', "numerical:\n      order: desc"))
    default = read_one(POLICY.replace('semver:\n      range: ">=1.0.0"', "alphabetical: {}"))
    assert isinstance(asc, ImagePolicy) and isinstance(desc, ImagePolicy) and isinstance(default, ImagePolicy)
    assert asc.choice.direction is Direction.HIGHEST
    assert desc.choice == PolicyChoice(PolicyKind.NUMERICAL, Direction.LOWEST)
    assert default.choice.direction is Direction.HIGHEST


def test_uppercase_order_is_read_like_flux_with_a_warning() -> None:
    rules, problems = read(POLICY.replace('semver:\n      range: ">=1.0.0"', "alphabetical:\n      order: DESC"))
    assert isinstance(rules[0], ImagePolicy) and rules[0].choice.direction is Direction.LOWEST
    assert messages(problems) == [
        'm.yaml:10:14: warning: spec.policy.alphabetical.order: Flux reads "DESC" as desc, '
        "but its CRD only admits lower-case asc or desc"
    ]


def test_several_policies_warn_and_semver_wins() -> None:
    rules, problems = read(POLICY + "    numerical:\n      order: asc\n")
    assert isinstance(rules[0], ImagePolicy) and rules[0].choice.kind is PolicyKind.SEMVER
    assert messages(problems) == [
        "m.yaml:8:3: warning: spec.policy: sets semver and numerical: Flux uses semver "
        "(semver, then alphabetical, then numerical)"
    ]


def test_image_policy_v1beta2_digest_reflection_with_interval() -> None:
    text = POLICY.replace("/v1\n", "/v1beta2\n", 1) + "  digestReflectionPolicy: Always\n  interval: 10m\n"
    policy = read_one(text)
    assert isinstance(policy, ImagePolicy)
    assert policy.digest_reflection is DigestReflection.ALWAYS
    assert policy.interval == timedelta(minutes=10)


def test_kustomization_v1beta2_deprecated_patches_become_patches() -> None:
    text = KS.replace("/v1\n", "/v1beta2\n", 1) + (
        "  patchesStrategicMerge:\n"
        "    - apiVersion: apps/v1\n"
        "      kind: Deployment\n"
        "      metadata: {name: web}\n"
        "  patchesJson6902:\n"
        "    - target: {group: apps, version: v1, kind: Deployment, name: web}\n"
        "      patch:\n"
        "        - op: replace\n"
        "          path: /spec/replicas\n"
        "          value: 3\n"
        "  validation: client\n"
    )
    rules, problems = read(text)
    assert not problems.errors
    ks = rules[0]
    assert isinstance(ks, Kustomization)
    assert ks.patches == (
        Patch("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"),
        Patch("- op: replace\n  path: /spec/replicas\n  value: 3\n",
              Selector(group="apps", version="v1", kind="Deployment", name="web")),
    )
    assert sorted(p.message for p in problems.warnings) == [
        "spec.patchesJson6902[0]: deprecated by Flux: read as spec.patches",
        "spec.patchesStrategicMerge[0]: deprecated by Flux: read as spec.patches",
        "spec.validation is ignored by gitward (deprecated by Flux)",
    ]


def test_kustomization_full_spec() -> None:
    text = KS + (
        "  path: ./apps\n"
        "  retryInterval: 2m\n"
        "  timeout: 3m\n"
        "  wait: true\n"
        "  targetNamespace: web\n"
        "  dependsOn: [{name: infra}, {name: crds, namespace: kube-system}]\n"
        "  commonMetadata: {labels: {team: a}, annotations: {note: b}}\n"
        "  images: [{name: web, newTag: '1.2'}]\n"
        "  patches:\n"
        "    - patch: |\n"
        "        - op: remove\n"
        "          path: /spec/replicas\n"
        "      target: {kind: Deployment, labelSelector: app=web}\n"
        "  postBuild:\n"
        "    substitute: {domain: example.com}\n"
        "    substituteFrom: [{kind: Secret, name: vars, optional: true}]\n"
        "  healthChecks: [{apiVersion: apps/v1, kind: Deployment, name: web, namespace: web}]\n"
        "  components: [../c]\n"
    )
    ks = read_one(text)
    assert isinstance(ks, Kustomization)
    assert ks.retry_interval == timedelta(minutes=2) and ks.timeout == timedelta(minutes=3)
    assert ks.wait and ks.prune and ks.target_namespace == "web"
    assert ks.depends_on == (NamespacedRef("infra"), NamespacedRef("crds", "kube-system"))
    assert ks.common_labels == (("team", "a"),) and ks.common_annotations == (("note", "b"),)
    assert ks.images[0].new_tag == "1.2"
    assert ks.patches == (Patch("- op: remove\n  path: /spec/replicas\n", Selector(kind="Deployment", label_selector="app=web")),)
    assert ks.substitute == (("domain", "example.com"),)
    assert ks.substitute_from == (SubstituteFrom("Secret", "vars", True),)
    assert ks.health_checks[0].api_version == "apps/v1"
    assert ks.components == ("../c",)


def test_image_update_v1beta1_and_defaults() -> None:
    text = UPDATE.replace("/v1\n", "/v1beta1\n", 1) + (
        "    checkout:\n      ref:\n        branch: main\n"
        "    push:\n      branch: auto\n"
        "  update:\n    strategy: Setters\n    path: ./clusters\n"
    )
    update = read_one(text)
    assert isinstance(update, ImageUpdate)
    assert update.checkout_ref == GitRef(branch="main")
    assert update.message_template == DEFAULT_COMMIT_MESSAGE
    assert update.author.name == "" and update.author.email == "bot@example.com"
    assert update.push_branch == "auto" and update.path == "./clusters"


def test_image_update_policy_selector_and_signing() -> None:
    text = UPDATE + (
        "      signingKey:\n        secretRef: {name: gpg}\n"
        "      messageTemplateValues: {env: prod}\n"
        "    push:\n      refspec: refs/heads/auto\n      options: {ci.skip: ''}\n"
        "  policySelector:\n    matchLabels: {app: web}\n"
    )
    update = read_one(text)
    assert isinstance(update, ImageUpdate)
    assert update.signing_key_secret == "gpg"
    assert update.message_template_values == (("env", "prod"),)
    assert update.push_refspec == "refs/heads/auto" and update.push_options == (("ci.skip", ""),)
    assert update.policy_selector == (("app", "web"),)
    assert update.path == ""


def test_gitward_annotations_are_read() -> None:
    text = POLICY.replace(
        "  name: web\n",
        "  name: web\n  annotations:\n    gitward.dev/hold: 1h\n    gitward.dev/never-downgrade: 'true'\n"
        "    gitward.dev/pin: 1.2.3\n    gitward.dev/allow-rollback: 'true'\n    other.example/x: '1'\n",
        1,
    )
    policy = read_one(text)
    assert isinstance(policy, ImagePolicy)
    assert (policy.hold, policy.never_downgrade, policy.pin, policy.allow_rollback) == \
        (timedelta(hours=1), True, "1.2.3", True)
    repo = read_one(REPO.replace("  name: web\n", "  name: web\n  annotations: {gitward.dev/page-size: '50'}\n", 1))
    assert isinstance(repo, ImageRepository) and repo.page_size == 50


def test_origins_and_nested_positions() -> None:
    rules, _ = read("---\n" + KS + "  dependsOn:\n    - name: infra\n")
    ks = rules[0]
    assert isinstance(ks, Kustomization)
    assert ks.origin is not None and (ks.origin.line, ks.origin.column) == (3, 1)
    assert ks.source_ref.origin is not None and (ks.source_ref.origin.line, ks.source_ref.origin.column) == (11, 11)
    assert ks.depends_on[0].origin is not None and ks.depends_on[0].origin.line == 13


def test_other_documents_are_ignored_and_flux_kinds_gitward_does_not_reconcile_are_listed() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems: []\n---\n"
        "apiVersion: source.toolkit.fluxcd.io/v1beta2\nkind: HelmRepository\nmetadata: {name: h}\n---\n"
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: r, namespace: apps}\n---\n"
        "- just\n- a list\n---\n---\nplain scalar\n---\n" + GIT
    )
    rules, problems = read(text)
    assert len(problems) == 0
    assert [type(r) for r in rules] == [FluxObject, FluxObject, GitSource]
    assert [(r.KIND, r.key.ref) for r in rules[:2]] == [("HelmRepository", "flux-system/h"),
                                                        ("HelmRelease", "apps/r")]


def test_a_kustomization_may_name_any_flux_source_kind() -> None:
    for kind in ("OCIRepository", "Bucket", "ExternalArtifact"):
        rules, problems = read(KS.replace("kind: GitRepository", f"kind: {kind}"))
        assert problems.errors == []
        assert isinstance(rules[0], Kustomization) and rules[0].source_ref.kind.value == kind


def test_an_unknown_kind_of_a_flux_group_is_a_warning_and_still_listed() -> None:
    rules, problems = read("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelase\nmetadata: {name: r}\n")
    assert [p.message for p in problems] == [
        'HelmRelase is not a kind of helm.toolkit.fluxcd.io (did you mean "HelmRelease"?): read as '
        "an object gitward does not reconcile"]
    assert [r.KIND for r in rules] == ["HelmRelase"]


def test_every_problem_of_a_file_is_collected_and_good_objects_load() -> None:
    text = GIT + "---\n" + KS.replace("interval: 10m", "interval: often") + "---\n" + REPO.replace("image: ghcr", "imag: ghcr")
    rules, problems = read(text)
    assert [type(r) for r in rules] == [GitSource]
    assert [(p.pos.line if p.pos else 0, p.message) for p in problems.sorted()] == [
        (14, 'spec.interval: invalid duration "often": expected a duration such as 30s, 5m, 1h30m or 500ms'),
        (24, "spec.image is required"),
        (25, 'unknown field "imag" in spec (did you mean "image"?)'),
    ]


def test_a_duration_longer_than_go_accepts_is_a_located_error() -> None:
    rules, problems = read(GIT + "---\n" + KS.replace("interval: 10m", "interval: 99999999999999999999h"))
    assert [type(r) for r in rules] == [GitSource]
    [problem] = problems.errors
    assert (problem.pos.line if problem.pos else 0, problem.message) == (
        14, 'spec.interval: invalid duration "99999999999999999999h": longer than the '
            "2562047h47m16s Flux (Go) accepts")


def test_syntax_error_is_recorded_not_raised() -> None:
    rules, problems = read(GIT + "---\nkind: x: y\n", "bad.yaml")
    assert rules == []
    assert messages(problems) == ["bad.yaml:9:8: error: document 2: mapping values are not allowed here"]


def test_credentials_in_a_url_are_refused_without_echoing_them() -> None:
    text = GIT.replace("https://example.com", "https://user:s3cret-token@example.com")
    rules, problems = read(text)
    assert rules == []
    rendered = "\n".join(p.render() for p in problems)
    assert "s3cret" not in rendered
    assert messages(problems) == [
        "m.yaml:5:1: error: spec.url (line 7) carries credentials: put them in the Secret named by spec.secretRef"
    ]


# -- bad input: message, line and column ------------------------------------------------------

BAD = [
    # (name, text, severity, message, line, column)
    ("string-got-mapping", GIT.replace("url: https://example.com/app.git", "url: {a: 1}"),
     "error", "spec.url: expected a string, got a mapping", 7, 8),
    ("missing-interval", GIT.replace("  interval: 1m\n", ""),
     "error", "spec.interval is required", 5, 1),
    ("missing-spec", "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: a}\n",
     "error", "spec is required", 1, 1),
    ("missing-name", GIT.replace("  name: app\n", "  namespace: x\n"),
     "error", "metadata.name is required", 3, 1),
    ("bad-name", GIT.replace("name: app", "name: My_App"),
     "error", 'metadata.name: "My_App" is not a valid Kubernetes name (lower-case letters, digits, "-" and ".")', 4, 9),
    ("bad-duration", GIT.replace("interval: 1m", "interval: 1 minute"),
     "error", 'spec.interval: invalid duration "1 minute": expected a duration such as 30s, 5m, 1h30m or 500ms', 6, 13),
    ("timeout-in-hours", GIT + "  timeout: 1h\n",
     "error", 'spec.timeout: invalid duration "1h": this field takes no hours (h); write it in minutes', 8, 12),
    ("unknown-spec-field", GIT + "  intervall: 5m\n",
     "error", 'unknown field "intervall" in spec (did you mean "interval"?)', 8, 3),
    ("unknown-top-field", GIT + "staus: {}\n",
     "error", 'unknown field "staus" (did you mean "status"?)', 8, 1),
    ("unknown-nested-field", GIT + "  ref:\n    brnch: main\n",
     "error", 'unknown field "brnch" in spec.ref (did you mean "branch"?)', 9, 5),
    ("ignored-field", GIT + "  verify:\n    mode: HEAD\n",
     "warning", "spec.verify is ignored by gitward (commit signatures are not verified: the fetched "
                "commit is used as it is)", 8, 3),
    ("bad-url-scheme", GIT.replace("https://", "git@"),
     "error", "spec.url: must start with http://, https://, ssh:// or file://", 7, 8),
    ("branch-is-a-number", GIT + "  ref:\n    branch: 2024\n",
     "error", "spec.ref.branch: expected a string, got an integer", 9, 13),
    ("unsupported-version", GIT.replace("/v1\n", "/v1alpha1\n", 1),
     "error", 'GitRepository apiVersion "source.toolkit.fluxcd.io/v1alpha1" is not supported: '
              "use source.toolkit.fluxcd.io/v1 (or v1beta2, v1beta1)", 1, 13),
    ("prune-missing", KS.replace("  prune: true\n", ""),
     "error", "spec.prune is required", 5, 1),
    ("prune-as-string", KS.replace("prune: true", "prune: 'yes'"),
     "error", "spec.prune: expected true or false, got a string", 7, 10),
    ("source-kind-typo", KS.replace("kind: GitRepository", "kind: GitRepo"),
     "error", 'spec.sourceRef.kind: must be GitRepository, OCIRepository, Bucket or ExternalArtifact, '
     'got "GitRepo" (did you mean "GitRepository"?)', 9, 11),
    ("removed-in-v1", KS + "  patchesStrategicMerge: []\n",
     "error", "spec.patchesStrategicMerge: removed in kustomize.toolkit.fluxcd.io/v1: use spec.patches", 11, 3),
    ("substitute-not-string", KS + "  postBuild:\n    substitute:\n      replicas: 3\n",
     "error", "spec.postBuild.substitute.replicas: expected a string, got an integer", 13, 17),
    ("substitute-from-kind", KS + "  postBuild:\n    substituteFrom: [{kind: Secrets, name: v}]\n",
     "error", 'spec.postBuild.substituteFrom[0].kind: must be one of ConfigMap, Secret, got "Secrets" '
              '(did you mean "Secret"?)', 12, 29),
    ("patch-missing", KS + "  patches:\n    - target: {kind: Deployment}\n",
     "error", "spec.patches[0].patch is required", 12, 7),
    ("order-invalid", POLICY.replace('semver:\n      range: ">=1.0.0"', "alphabetical:\n      order: up"),
     "error", 'spec.policy.alphabetical.order: must be asc or desc, got "up"', 10, 14),
    ("policy-empty", POLICY.replace('    semver:\n      range: ">=1.0.0"\n', "    {}\n"),
     "error", "spec.policy: set one of semver, alphabetical or numerical", 8, 3),
    ("semver-range-missing", POLICY.replace('      range: ">=1.0.0"\n', "      {}\n"),
     "error", "spec.policy.semver.range is required", 9, 5),
    ("digest-policy-enum", POLICY + "  digestReflectionPolicy: Sometimes\n",
     "error", 'spec.digestReflectionPolicy: must be one of Never, IfNotPresent, Always, got "Sometimes"', 11, 27),
    ("interval-without-always", POLICY + "  interval: 5m\n",
     "error", "spec.interval: only accepted when spec.digestReflectionPolicy is Always", 11, 13),
    ("always-without-interval", POLICY + "  digestReflectionPolicy: Always\n",
     "error", "spec.digestReflectionPolicy: Always needs spec.interval (how often to refresh the digest)", 11, 27),
    ("field-of-later-version", POLICY.replace("/v1\n", "/v1beta1\n", 1) + "  suspend: true\n",
     "error", "spec.suspend: not available in image.toolkit.fluxcd.io/v1beta1 (added in v1beta2)", 11, 3),
    ("v1beta1-no-digest-policy", POLICY.replace("/v1\n", "/v1beta1\n", 1) + "  digestReflectionPolicy: Never\n",
     "error", "spec.digestReflectionPolicy: not available in image.toolkit.fluxcd.io/v1beta1 (added in v1beta2)", 11, 3),
    ("provider-enum", REPO + "  provider: gcr\n",
     "error", 'spec.provider: must be one of generic, aws, azure, gcp, got "gcr" (did you mean "gcp"?)', 8, 13),
    ("image-with-tag", REPO.replace("ghcr.io/acme/web", "ghcr.io/acme/web:1.0"),
     "error", "spec.image: image 'ghcr.io/acme/web:1.0' should not include a tag; remove ':1.0'", 6, 10),
    ("too-many-exclusions", REPO + "  exclusionList: [" + ", ".join(f"a{i}" for i in range(26)) + "]\n",
     "error", "spec.exclusionList: at most 25 patterns (Flux's limit), got 26", 8, 18),
    ("page-size-bad", REPO.replace("  name: web\n", "  name: web\n  annotations: {gitward.dev/page-size: lots}\n", 1),
     "error", 'annotation gitward.dev/page-size: expected a whole number from 1 to 1000000, got "lots"', 5, 40),
    ("annotation-not-string", POLICY.replace("  name: web\n", "  name: web\n  annotations:\n    gitward.dev/never-downgrade: true\n", 1),
     "error", "metadata.annotations.gitward.dev/never-downgrade: expected a string, got a boolean", 6, 34),
    ("annotation-typo", POLICY.replace("  name: web\n", "  name: web\n  annotations:\n    gitward.dev/hodl: 1h\n", 1),
     "warning", 'metadata.annotations: annotation "gitward.dev/hodl" means nothing to gitward here '
                '(did you mean "gitward.dev/hold"?)', 6, 5),
    ("author-email-missing", UPDATE.replace("email: bot@example.com", "name: bot"),
     "error", "spec.git.commit.author.email is required", 12, 7),
    ("git-missing", UPDATE.split("  git:")[0],
     "error", "spec.git is required", 5, 1),
    ("strategy", UPDATE + "  update:\n    strategy: Kustomize\n",
     "error", 'spec.update.strategy: must be one of Setters, got "Kustomize"', 15, 15),
    ("refspec-force", UPDATE + "    push:\n      refspec: +refs/heads/x\n",
     "error", "spec.git.push.refspec: refspecs that delete or force-update references are not supported", 15, 16),
    ("match-expressions", UPDATE + "  policySelector:\n    matchExpressions: []\n",
     "warning", "spec.policySelector.matchExpressions is ignored by gitward (only matchLabels selects the "
                "policies gitward applies)", 15, 5),
    ("policy-selector-v1beta1", UPDATE.replace("/v1\n", "/v1beta1\n", 1) + "  policySelector: {}\n",
     "error", "spec.policySelector: not available in image.toolkit.fluxcd.io/v1beta1 (added in v1beta2)", 14, 3),
    ("duplicate-field", GIT + "  interval: 2m\n",
     "error", 'spec.interval: duplicate field "interval"', 8, 3),
    ("list-expected", KS + "  components: ./c\n",
     "error", "spec.components: expected a list, got a string", 11, 15),
]


@pytest.mark.parametrize(
    "text, severity, message, line, column",
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_bad_input_is_located(text: str, severity: str, message: str, line: int, column: int) -> None:
    rules, problems = read(text)
    found = [(p.severity.value, p.message, p.pos.line if p.pos else 0, p.pos.column if p.pos else 0) for p in problems]
    assert found == [(severity, message, line, column)]
    if severity == "error":
        assert rules == []
    else:
        assert len(rules) == 1


def test_there_are_at_least_twenty_bad_cases() -> None:
    assert len(BAD) >= 20


# -- no traceback for any input ---------------------------------------------------------------

FLUX_WORDS = [
    "apiVersion", "kind", "metadata", "name", "namespace", "spec", "interval", "url", "ref", "branch",
    "sourceRef", "prune", "path", "patches", "patch", "target", "policy", "semver", "range",
    "alphabetical", "order", "filterTags", "pattern", "imageRepositoryRef", "git", "commit", "author",
    "email", "push", "update", "exclusionList", "image", "annotations", "postBuild", "substitute",
    "patchesJson6902", "patchesStrategicMerge", "dependsOn", "healthChecks", "digestReflectionPolicy",
    "gitward.dev/hold", "gitward.dev/page-size", "checkout", "messageTemplate", "policySelector",
]
KINDS = [
    ("source.toolkit.fluxcd.io", "GitRepository"), ("kustomize.toolkit.fluxcd.io", "Kustomization"),
    ("image.toolkit.fluxcd.io", "ImageRepository"), ("image.toolkit.fluxcd.io", "ImagePolicy"),
    ("image.toolkit.fluxcd.io", "ImageUpdateAutomation"),
]
TOKENS = st.sampled_from([
    *FLUX_WORDS, ": ", ":", "- ", "\n", "\n  ", "\n    ", "---\n", "{", "}", "[", "]", ", ", "'", '"',
    "&a ", "*a", "<<: ", "!!binary ", "!!str ", "~", "true", "5m", "1h", "asc", "DESC", "#", "\t",
    "apiVersion: image.toolkit.fluxcd.io/v1\n", "kind: ImagePolicy\n", "kind: Kustomization\n",
    "apiVersion: kustomize.toolkit.fluxcd.io/v1beta1\n", "2024-13-45", "0x1F", "1.10", "? ", "|\n  ",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.sampled_from(FLUX_WORDS),
    st.text(max_size=8), st.sampled_from(["5m", "1h", "asc", "desc", "Always", "GitRepository", "Setters"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FLUX_WORDS), inner, max_size=4),
    max_leaves=12,
)


def assert_never_raises(text: str) -> None:
    problems = Problems()
    try:
        rules = read_flux("fuzz.yaml", text, problems)
    except GitwardError:
        return
    assert isinstance(rules, list)
    for problem in problems:
        assert problem.pos is not None and problem.pos.path == "fuzz.yaml"
        assert problem.severity in (Severity.ERROR, Severity.WARNING)


@settings(max_examples=300, deadline=None, suppress_health_check=[Health.too_slow])
@given(st.text(max_size=200))
def test_fuzz_random_text(text: str) -> None:
    assert_never_raises(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[Health.too_slow])
@given(st.lists(TOKENS, max_size=60).map("".join))
def test_fuzz_yamlish_text(text: str) -> None:
    assert_never_raises(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[Health.too_slow])
@given(
    st.sampled_from(KINDS),
    st.sampled_from(["v1", "v1beta2", "v1beta1"]),
    st.dictionaries(st.sampled_from(FLUX_WORDS), VALUES, max_size=6),
    VALUES,
)
def test_fuzz_random_structures(kind: tuple[str, str], version: str, spec: dict[str, object], meta: object) -> None:
    doc = {"apiVersion": f"{kind[0]}/{version}", "kind": kind[1], "metadata": meta, "spec": spec}
    assert_never_raises(yaml.safe_dump(doc))
    assert_never_raises(yaml.safe_dump_all([doc, {"metadata": {"name": "x"}, **doc}]))


CORPUS_DOCS = [yaml.safe_load(text) for text in (GIT, KS, POLICY, REPO, UPDATE)]


def mutate(doc: object, path: list[int], value: object) -> object:
    """Replace one node of a document, chosen by a path of indexes, with a random value."""
    if not path or not isinstance(doc, (dict, list)) or not doc:
        return value
    if isinstance(doc, dict):
        keys = list(doc)
        key = keys[path[0] % len(keys)]
        return {**doc, key: mutate(doc[key], path[1:], value)}
    index = path[0] % len(doc)
    return [*doc[:index], mutate(doc[index], path[1:], value), *doc[index + 1:]]


@settings(max_examples=500, deadline=None, suppress_health_check=[Health.too_slow])
@given(st.sampled_from(CORPUS_DOCS), st.lists(st.integers(0, 20), min_size=1, max_size=5), VALUES)
def test_fuzz_mutated_valid_documents(doc: dict[str, object], path: list[int], value: object) -> None:
    mutated = mutate(doc, path, value)
    text = yaml.safe_dump(mutated)
    problems = Problems()
    rules = read_flux("fuzz.yaml", text, problems)
    if not problems.errors:
        assert len(rules) <= 1
    else:
        assert all(p.pos is not None and p.pos.line > 0 for p in problems.errors)


def test_credentials_in_a_url_of_another_scheme_are_not_echoed_either() -> None:
    rules, problems = read(GIT.replace("https://example.com", "git://user:hunter2@example.com"))
    assert rules == []
    assert "hunter2" not in "\n".join(p.render() for p in problems)
    assert [p.message for p in problems] == [
        "spec.url (line 7) carries credentials: put them in the Secret named by spec.secretRef"
    ]
