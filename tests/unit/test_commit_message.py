"""Flux's commit message data and `gitward check` on message templates."""

from __future__ import annotations

import pytest

from engine.errors import Severity, SourcePos
from engine.evaluate.commitmessage import ObjectRef, check_message, object_at
from engine.model import CommitAuthor, ImageUpdate, SourceRef

MULTI = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
  - name: web
    newTag: 1.0.0 # {"$imagepolicy": "apps:web:tag"}
---
# a comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/org/web:1.0.0 # {"$imagepolicy": "apps:web"}
"""


@pytest.mark.parametrize(("line", "expected"), [
    (5, ObjectRef("kustomize.config.k8s.io/v1beta1", "Kustomization")),
    (17, ObjectRef("apps/v1", "Deployment", "web", "apps")),
    (7, ObjectRef()),
])
def test_a_change_is_in_the_document_holding_its_line(line: int, expected: ObjectRef) -> None:
    assert object_at(MULTI, "k.yaml", line) == expected


def test_a_file_that_does_not_parse_has_no_object() -> None:
    assert object_at("a: [\n", "bad.yaml", 1) == ObjectRef()


def automation(template: str) -> ImageUpdate:
    return ImageUpdate("apps", SourceRef("flux-system"), CommitAuthor("bot", "bot@example.com"),
                       namespace="apps", message_template=template,
                       origin=SourcePos("u.yaml", 1, 1), message_origin=SourcePos("u.yaml", 20, 24))


@pytest.mark.parametrize("template", [
    "Update from image update automation",
    "Updated images:\n{{ range .Changed.Changes }}{{ .NewValue }}\n{{ end }}",
    "{{ range $f, $o := .Changed.FileChanges }}{{ $f }}{{ range $id, $c := $o }}{{ $id.Kind }}{{ end }}{{ end }}",
    '{{ index .Values "missing" }}{{ (index .Changed.Changes 1).Setter }}',
])
def test_a_good_template_passes(template: str) -> None:
    assert check_message(automation(template)) == []


def test_a_misspelt_field_is_an_error_at_the_template() -> None:
    [problem] = check_message(automation("{{ range .Changed.Changes }}{{ .NewVaule }}{{ end }}"))
    assert problem.severity is Severity.ERROR
    assert problem.pos == SourcePos("u.yaml", 20, 24)
    assert problem.message.endswith("can't evaluate field NewVaule in type update.Change")


def test_a_removed_field_is_a_warning_only_when_the_template_uses_it() -> None:
    [problem] = check_message(automation("{{ range .Updated.Images }}{{ .Repository }}{{ end }}"))
    assert problem.severity is Severity.WARNING
    assert "uses .Updated," in problem.message
    [problem] = check_message(automation("{{ $r := .Changed }}{{ $r.ImageResult.Files }}"))
    assert "uses .ImageResult," in problem.message
