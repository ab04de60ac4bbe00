"""What the Flux readers keep verbatim (FluxField), what they cannot keep, and the `flux` field of
the DSL that carries it: its values, its checks, and its way back to Flux YAML."""

from __future__ import annotations

import pytest
import yaml

from engine.errors import Problems
from engine.model import GitSource, ImagePolicy, Kustomization, Rule
from engine.rules.flux import read_flux, write_flux
from engine.rules.fluxapi import NOT_KEPT
from engine.rules.parse import parse_rules
from engine.rules.printer import print_rules

CIPHER = ("ENC[AES256_GCM,data:5DLPmAMTFTi9R0XfiqdRZ8Q1,iv:M/CYyZnYSnCDXd4JBsyeR0Aav9ER0xZ+G2jmt0nfLLs=,"
          "tag:EY9MLwB9Pd6ggEQTDKZoLg==,type:str]")

KUSTOMIZATION = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  labels: {team: platform}
  annotations:
    kustomize.toolkit.fluxcd.io/ssa: IfNotPresent
    gitward.dev/hold: 1h
spec:
  interval: 10m
  prune: true
  sourceRef: {kind: GitRepository, name: repo, apiVersion: source.toolkit.fluxcd.io/v1}
  dependsOn:
    - name: infra
    - name: crds
      readyExpr: dep.status.ready
  decryption: {provider: sops, secretRef: {name: sops-age}}
"""


def read(text: str) -> tuple[list[Rule], Problems]:
    problems = Problems()
    return read_flux("m.yaml", text, problems), problems


def kept(rule: Rule) -> dict[str, object]:
    assert isinstance(rule, (GitSource, Kustomization, ImagePolicy))
    return {f.path: yaml.safe_load(f.value) for f in rule.flux_fields}


def parse(text: str) -> tuple[list[Rule], Problems]:
    problems = Problems()
    return parse_rules("apps.rules", text, problems), problems


def test_the_reader_keeps_what_it_does_not_model_by_path() -> None:
    [rule], problems = read(KUSTOMIZATION)
    assert kept(rule) == {
        "metadata.annotations": {"gitward.dev/hold": "1h", "kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"},
        "metadata.labels": {"team": "platform"},
        "spec.decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}},
        "spec.dependsOn[1].readyExpr": "dep.status.ready",
        "spec.sourceRef.apiVersion": "source.toolkit.fluxcd.io/v1",
    }
    assert [f.origin.line for f in rule.flux_fields if f.origin] == [6, 5, 17, 16, 12]  # type: ignore[union-attr]
    assert 'annotation "gitward.dev/hold" means nothing to gitward here' in problems.warnings[0].message


def test_a_gate_annotation_is_read_as_the_gate_not_kept() -> None:
    policy = """\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: web
  annotations: {gitward.dev/hold: 1h, owner: ops}
spec:
  imageRepositoryRef: {name: web}
  policy:
    semver: {range: ">=1.0.0"}
    alphabetical: {order: desc}
"""
    [rule], _ = read(policy)
    assert isinstance(rule, ImagePolicy) and rule.hold is not None
    assert kept(rule) == {"metadata.annotations": {"owner": "ops"}, "spec.policy.alphabetical": {"order": "desc"}}
    again = yaml.safe_load(write_flux([rule]))
    assert again["metadata"]["annotations"] == {"gitward.dev/hold": "1h0m0s", "owner": "ops"}
    assert again["spec"]["policy"] == {"alphabetical": {"order": "desc"}, "semver": {"range": ">=1.0.0"}}


def test_the_writer_puts_each_field_back_in_place() -> None:
    [rule], _ = read(KUSTOMIZATION)
    doc = yaml.safe_load(write_flux([rule]))
    original = yaml.safe_load(KUSTOMIZATION)
    assert doc["spec"]["dependsOn"] == original["spec"]["dependsOn"]
    assert doc["spec"]["sourceRef"] == original["spec"]["sourceRef"]
    assert doc["spec"]["decryption"] == original["spec"]["decryption"]
    assert doc["metadata"]["labels"] == original["metadata"]["labels"]


@pytest.mark.parametrize(("text", "message", "line"), [
    ("status:\n  conditions: [{type: Ready}]\n", "status is written by Flux's controllers", 18),
    ("", "metadata.uid is set by the API server", 5),
])
def test_what_gitward_never_reads_is_a_not_kept_warning(text: str, message: str, line: int) -> None:
    source = KUSTOMIZATION + text if text else KUSTOMIZATION.replace("  labels:", "  uid: 1f0c\n  labels:")
    [rule], problems = read(source)
    [warning] = [p for p in problems.warnings if p.code == NOT_KEPT]
    assert warning.message.startswith(message) and warning.pos is not None and warning.pos.line == line
    assert not any(f.path.startswith(("status", "metadata.uid")) for f in rule.flux_fields)  # type: ignore[union-attr]


def test_empty_server_fields_are_nothing_to_warn_about() -> None:
    _, problems = read(KUSTOMIZATION.replace("  labels:", "  creationTimestamp: null\n  labels:") + "status: {}\n")
    assert not [p for p in problems.warnings if p.code == NOT_KEPT]


def test_a_kept_field_holding_ciphertext_is_not_kept() -> None:
    [rule], problems = read(KUSTOMIZATION.replace("name: sops-age", f'name: "{CIPHER}"'))
    assert "spec.decryption" not in kept(rule)
    [warning] = [p for p in problems.warnings if p.code == NOT_KEPT]
    assert warning.message == ("spec.decryption holds a SOPS-encrypted value: gitward does not decrypt, so it "
                               "cannot keep the field")


def test_a_field_v1_removed_keeps_its_api_version() -> None:
    source = """\
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: GitRepository
metadata: {name: repo}
spec:
  interval: 1m
  url: https://example.com/repo.git
  gitImplementation: libgit2
"""
    [rule], _ = read(source)
    assert kept(rule) == {"apiVersion": "source.toolkit.fluxcd.io/v1beta2", "spec.gitImplementation": "libgit2"}
    assert write_flux([rule]).startswith("---\napiVersion: source.toolkit.fluxcd.io/v1beta2\n")
    [plain], _ = read(source.replace("  gitImplementation: libgit2\n", ""))
    assert kept(plain) == {} and write_flux([plain]).startswith("---\napiVersion: source.toolkit.fluxcd.io/v1\n")


def test_the_dsl_prints_and_reads_flux_fields() -> None:
    [rule], _ = read(KUSTOMIZATION)
    text = print_rules([rule])
    assert text.endswith(
        '  flux metadata.annotations """\n'
        "    gitward.dev/hold: 1h\n"
        "    kustomize.toolkit.fluxcd.io/ssa: IfNotPresent\n"
        '    """\n'
        '  flux metadata.labels "team: platform"\n'
        '  flux spec.decryption """\n'
        "    provider: sops\n"
        "    secretRef:\n"
        "      name: sops-age\n"
        '    """\n'
        '  flux "spec.dependsOn[1].readyExpr" "dep.status.ready"\n'
        '  flux spec.sourceRef.apiVersion "source.toolkit.fluxcd.io/v1"\n'
        "}\n")
    back, problems = parse(text)
    assert back == [rule] and not problems.errors


@pytest.mark.parametrize(("value", "data"), [
    ('"Delete"', "Delete"),
    ('"true"', True),
    ("'\"true\"'", "true"),
    ('"[a, b]"', ["a", "b"]),
    ('"""\n    - a\n    - b\n  """', ["a", "b"]),
    ('"2024-01-01"', "2024-01-01"),
])
def test_a_flux_value_is_yaml_read_as_kubernetes_reads_it(value: str, data: object) -> None:
    [rule], problems = parse(f"kustomization apps {{\n  source git repo\n  flux spec.deletionPolicy {value}\n}}\n")
    assert not problems.errors
    assert kept(rule) == {"spec.deletionPolicy": data}


@pytest.mark.parametrize(("line", "message"), [
    ("flux spec.url \"x\"", "flux spec.url: unknown field \"url\" in spec"),
    ("flux spec.path \"./x\"", "flux spec.path: gitward models this field: write it with its keyword (docs/dsl.md), "
                               "not as a flux field"),
    ("flux status \"{a: 1}\"", "flux status: gitward cannot keep this field"),
    ("flux \"spec.dependsOn[3].readyExpr\" \"x\"",
     "flux spec.dependsOn[3].readyExpr: gitward models this field: write it with its keyword (docs/dsl.md), "
     "not as a flux field"),
    ("flux apiVersion \"kustomize.toolkit.fluxcd.io/v1beta2\"",
     "flux apiVersion: gitward keeps the apiVersion of a beta API only beside a field that v1 removed; without "
     "one, the object is written as v1"),
    ("flux \"spec..x\" \"1\"", "flux expects a field path such as spec.decryption, not 'spec..x'"),
    ("flux spec.deletionPolicy Delete", "flux expects its value as a string of YAML, not the bare word 'Delete'"),
    ("flux spec.deletionPolicy \"a: [\"",
     "the value of flux spec.deletionPolicy is not YAML (line 1 of the value): expected the node content, but "
     "found '<stream end>'"),
    ("flux spec.deletionPolicy \"\"", "flux spec.deletionPolicy expects one YAML value, not nothing"),
])
def test_a_flux_field_gitward_cannot_keep_is_a_located_error(line: str, message: str) -> None:
    _, problems = parse(f"kustomization apps {{\n  source git repo\n  prune true\n  {line}\n}}\n")
    [error] = problems.errors
    assert error.message == message
    assert error.pos is not None and error.pos.line == 4


def test_flux_fields_of_a_beta_api_travel_with_their_version() -> None:
    text = ('source git repo {\n  url "https://example.com/repo.git"\n'
            '  flux apiVersion "source.toolkit.fluxcd.io/v1beta2"\n  flux spec.gitImplementation "go-git"\n}\n')
    [rule], problems = parse(text)
    assert not problems.errors
    [warning] = problems.warnings
    assert warning.message == "flux spec.gitImplementation: spec.gitImplementation is ignored by gitward (deprecated by Flux)"
    doc = yaml.safe_load(write_flux([rule]))
    assert (doc["apiVersion"], doc["spec"]["gitImplementation"]) == ("source.toolkit.fluxcd.io/v1beta2", "go-git")
