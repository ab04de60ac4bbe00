"""`gitward convert` loses nothing: Flux fields gitward does not model travel as `flux` fields and
back; what cannot travel is a located warning and exit code 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.cli import main

KUSTOMIZATION = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
  labels:
    team: platform
spec:
  interval: 10m
  path: ./apps
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  decryption:
    provider: sops
    secretRef:
      name: sops-age
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_decryption_travels_to_the_dsl_and_back(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    flux = tmp_path / "apps.yaml"
    flux.write_text(KUSTOMIZATION)
    code, rules, err = run(capsys, "convert", str(flux))
    assert code == 0, err
    assert 'flux spec.decryption """\n    provider: sops\n    secretRef:\n      name: sops-age\n' in rules
    assert f"{flux}:15:3: warning: spec.decryption is ignored by gitward" in err
    dsl = tmp_path / "apps.rules"
    dsl.write_text(rules)
    code, back, err = run(capsys, "convert", str(dsl))
    assert code == 0, err
    [doc] = yaml.safe_load_all(back)
    original = yaml.safe_load(KUSTOMIZATION)
    assert doc["spec"]["decryption"] == original["spec"]["decryption"]
    assert doc["metadata"]["labels"] == {"team": "platform"}
    assert "apps.rules:6:8: warning: flux spec.decryption: spec.decryption is ignored by gitward" in err


def test_what_cannot_travel_is_named_and_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    flux = tmp_path / "apps.yaml"
    flux.write_text(KUSTOMIZATION.replace("  labels:\n", "  uid: 0d7c\n  labels:\n")
                    + "status:\n  lastAppliedRevision: main@sha1:0d7c\n")
    code, rules, err = run(capsys, "convert", str(flux))
    assert code == 1
    assert "flux spec.decryption" in rules and "uid" not in rules and "lastAppliedRevision" not in rules
    assert (f"{flux}:6:3: warning: metadata.uid is set by the API server: gitward does not read it, and "
            "convert and export leave it out") in err
    assert (f"{flux}:20:1: warning: status is written by Flux's controllers: gitward does not read it, "
            "and convert and export leave it out") in err
    assert err.endswith("2 left out of the output: see the warnings above\n")


def test_an_object_without_a_statement_is_named_and_exits_1(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    flux = tmp_path / "mixed.yaml"
    flux.write_text(KUSTOMIZATION + "---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\n"
                    "metadata:\n  name: traefik\nspec:\n  interval: 1h\n")
    code, rules, err = run(capsys, "convert", str(flux))
    assert code == 1
    assert rules.startswith("kustomization apps {")
    assert (f"{flux}:21:1: warning: HelmRelease flux-system/traefik is not a gitward rule (gitward does "
            "not reconcile it): left out of the output; keep it as YAML") in err


def test_export_keeps_what_gitward_does_not_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "apps.yaml").write_text(KUSTOMIZATION)
    code, out, err = run(capsys, "export", "kustomization", "apps", "--repo", str(tmp_path))
    assert code == 0, err
    [doc] = yaml.safe_load_all(out)
    assert doc["spec"]["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}
    assert doc["metadata"]["labels"] == {"team": "platform"}
