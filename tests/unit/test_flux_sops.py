"""SOPS-encrypted Flux files: the `sops:` metadata is accepted, ciphertext values are never read.

kustomize-controller decrypts a SOPS document while it applies it (the Kustomization's
spec.decryption) and drops its top-level `sops` mapping; gitward reads the file as it is in git.
"""

from __future__ import annotations

import pytest

from engine.errors import Problems
from engine.model import GitSource, ImageRepository, Kustomization
from engine.rules.flux import read_flux
from tests.conftest import realworld_repo

SOPS_METADATA = """\
sops:
  age:
    - recipient: age1esjyg2qfy49awv0ptkzvpk425adczjr38m37w2mmcahzc4p8n54sll2nzh
      enc: |
        -----BEGIN AGE ENCRYPTED FILE-----
        YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBBaG15Q1dnMzhqRDVGQjJT
        -----END AGE ENCRYPTED FILE-----
  lastmodified: "2025-07-11T06:55:22Z"
  mac: ENC[AES256_GCM,data:jK9anMBm8ehDxj4E,iv:Q0PhSDSgdF+kTbYX0JLeDtUiwDEgFGRAf6wOdmhwpKA=,tag:wBv17f+seY5kHrpekxN/7Q==,type:str]
  encrypted_regex: ^(data|stringData|url|prune|exclusionList)$
  version: 3.9.1
"""
URL_CIPHER = "ENC[AES256_GCM,data:5DLPmAMTFTi9R0XfiqdRZ8Q1,iv:M/CYyZnYSnCDXd4JBsyeR0Aav9ER0xZ+G2jmt0nfLLs=,tag:EY9MLwB9Pd6ggEQTDKZoLg==,type:str]"
BOOL_CIPHER = "ENC[AES256_GCM,data:8jR0hw==,iv:7bX4S9zoVjM0/5u7sQy0b2ZmWTKF7yfDe1ulMmDLTJs=,tag:2qgWcDE0Ji6BAQMKLk+uQg==,type:bool]"

def flux(api_version: str, kind: str, name: str, spec: str) -> str:
    return f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: {name}, namespace: flux-system}}\nspec:\n{spec}"


KINDS = {
    "GitRepository": flux("source.toolkit.fluxcd.io/v1", "GitRepository", "apps", """\
  url: https://example.com/apps.git
  interval: 5m
  ref: {branch: main}
"""),
    "Kustomization": flux("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", """\
  interval: 10m
  path: ./apps
  prune: true
  sourceRef: {kind: GitRepository, name: apps}
"""),
    "ImageRepository": flux("image.toolkit.fluxcd.io/v1", "ImageRepository", "web", """\
  image: ghcr.io/example/web
  interval: 5m
"""),
    "ImagePolicy": flux("image.toolkit.fluxcd.io/v1", "ImagePolicy", "web", """\
  imageRepositoryRef: {name: web}
  policy: {semver: {range: ">=1.0.0"}}
"""),
    "ImageUpdateAutomation": flux("image.toolkit.fluxcd.io/v1", "ImageUpdateAutomation", "apps", """\
  interval: 5m
  sourceRef: {kind: GitRepository, name: apps}
  git:
    commit: {author: {name: bot, email: bot@example.com}}
    push: {branch: main}
  update: {path: ./apps, strategy: Setters}
"""),
}


def read(text: str) -> tuple[list[object], Problems]:
    problems = Problems()
    return list(read_flux("enc.yaml", text, problems)), problems


def rendered(problems: Problems) -> list[str]:
    return [p.render(excerpt=False) for p in problems]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_sops_metadata_is_accepted_silently_on_every_kind(kind: str) -> None:
    rules, problems = read(KINDS[kind] + SOPS_METADATA)
    assert len(problems) == 0, rendered(problems)
    assert len(rules) == 1


def test_an_encrypted_field_is_a_located_warning_and_reads_as_absent() -> None:
    text = KINDS["GitRepository"].replace("https://example.com/apps.git", URL_CIPHER) + SOPS_METADATA
    rules, problems = read(text)
    assert not problems.errors, rendered(problems)
    [warning] = problems.warnings
    assert warning.message.startswith("spec.url is SOPS-encrypted: gitward does not decrypt")
    assert "spec.decryption" in warning.message
    assert warning.pos is not None and (warning.pos.line, warning.pos.column) == (5, 8)
    [rule] = rules
    assert isinstance(rule, GitSource) and rule.url == ""  # never the ciphertext


def test_an_encrypted_boolean_is_not_a_type_error() -> None:
    text = KINDS["Kustomization"].replace("prune: true", f"prune: {BOOL_CIPHER}") + SOPS_METADATA
    rules, problems = read(text)
    assert not problems.errors, rendered(problems)
    assert [w.message.split(" is ")[0] for w in problems.warnings] == ["spec.prune"]
    [rule] = rules
    assert isinstance(rule, Kustomization)


def test_each_encrypted_list_item_warns_and_the_clear_ones_are_kept() -> None:
    items = f"  exclusionList:\n    - '^.*\\.sig$'\n    - {URL_CIPHER}\n"
    text = KINDS["ImageRepository"] + items + SOPS_METADATA
    rules, problems = read(text)
    assert not problems.errors, rendered(problems)
    assert [w.message.split(" is ")[0] for w in problems.warnings] == ["spec.exclusionList[1]"]
    [rule] = rules
    assert isinstance(rule, ImageRepository) and rule.exclusion_list == ("^.*\\.sig$",)


def test_a_value_that_only_starts_like_ciphertext_is_read_as_written() -> None:
    text = KINDS["GitRepository"].replace("https://example.com/apps.git", "ENC[not-sops]")
    rules, problems = read(text)
    assert not problems.warnings
    assert any("spec.url" in e.message for e in problems.errors)  # a URL error, not a SOPS warning


def test_realworld_sops_file_has_no_sops_problem() -> None:
    path = realworld_repo("MTRNord__cluster") / "infrastructure_talos/controllers/capacitor.yaml"
    _, problems = read(path.read_text())
    assert not [p for p in problems if "sops" in p.message.lower()], rendered(problems)
