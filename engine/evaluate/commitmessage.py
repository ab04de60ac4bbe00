"""Commit messages of image update automations: Flux's Go template over Flux's data.

image-automation-controller executes `spec.git.commit.messageTemplate` as a Go text/template
(with sprig's hermetic functions) on this data:

- `.AutomationObject`: the automation's namespace and name (prints `namespace/name`);
- `.Changed`: `.FileChanges` (file -> object -> changes; files relative to `update.path`,
  objects by apiVersion, kind, name and namespace), and the methods `.Changes` (every distinct
  change: `.OldValue`, `.NewValue`, `.Setter`) and `.Objects` (object -> changes);
- `.Values`: `messageTemplateValues`.

Templates written for older Flux versions also render: `.Updated` (`.Files`, `.Images`,
`.Objects`, the images as references with `.Repository`, `.Identifier`, `.Registry`, `.Name`,
`.Policy`) and `.Changed.ImageResult`, with a warning, since current Flux refuses them. Go
ranges over maps in key order, so `.FileChanges` and `.Objects` are deterministic; Flux builds
`.Changes` from a map in random order, gitward lists them by file, object and place.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from engine.errors import Problem, Severity, SourcePos
from engine.evaluate.gotemplate import Template, TemplateError, parse
from engine.evaluate.gotemplate.nodes import Chain, Field, Variable
from engine.evaluate.gotemplate.values import GoList, GoMap, Struct
from engine.model import ImageUpdate
from engine.rules.yamldoc import YamlSyntaxError, load_documents

_REMOVED = frozenset({"Updated", "ImageResult"})


@dataclass(frozen=True, order=True)
class ObjectRef:
    """The object a change is in, as kyaml identifies it (empty parts for a kustomization.yaml)."""

    api_version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""


@dataclass(frozen=True)
class MessageChange:
    """One rewritten value as the template sees it; `file` is relative to the update path and
    `image` is the policy's latest reference (`repo:tag`, with `@digest` when reflected)."""

    file: str
    obj: ObjectRef
    old: str
    new: str
    setter: str
    policy: str
    image: str


def object_at(text: str, path: str, line: int) -> ObjectRef:
    """The identifier of the YAML document holding 1-based `line` (empty when none parses)."""
    for first, last, ref in _document_objects(path, text):
        if first <= line <= last:
            return ref
    return ObjectRef()


@functools.lru_cache(maxsize=64)
def _document_objects(path: str, text: str) -> tuple[tuple[int, int, ObjectRef], ...]:
    """Each document's first and last line and identifier; one parse per file and text."""
    try:
        documents = load_documents(path, text)
    except YamlSyntaxError:
        return ()
    found = []
    for doc in documents:
        node = doc.node
        if node is None:
            continue
        ref = ObjectRef()
        if isinstance(node, yaml.MappingNode):
            top = _scalars(node)
            meta = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode)
                         and k.value == "metadata" and isinstance(v, yaml.MappingNode)), None)
            names = _scalars(meta) if meta is not None else {}
            ref = ObjectRef(top.get("apiVersion", ""), top.get("kind", ""), names.get("name", ""),
                            names.get("namespace", ""))
        found.append((node.start_mark.line + 1, node.end_mark.line + 1, ref))
    return tuple(found)


def _scalars(node: yaml.MappingNode) -> dict[str, str]:
    return {k.value: str(v.value) for k, v in node.value
            if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode)}


# -- the data ---------------------------------------------------------------------------------


def _namespaced(namespace: str, name: str) -> Struct:
    return Struct("types.NamespacedName", (("Namespace", namespace), ("Name", name)),
                  string=lambda: f"{namespace}/{name}")


def _object(ref: ObjectRef) -> Struct:
    type_meta = Struct("yaml.TypeMeta", (("APIVersion", ref.api_version), ("Kind", ref.kind)))
    name_meta = Struct("yaml.NameMeta", (("Name", ref.name), ("Namespace", ref.namespace)))
    identifier = Struct("yaml.ResourceIdentifier", (("TypeMeta", type_meta), ("NameMeta", name_meta)),
                        embedded=frozenset({"TypeMeta", "NameMeta"}))
    return Struct("update.ObjectIdentifier", (("ResourceIdentifier", identifier),),
                  embedded=frozenset({"ResourceIdentifier"}))


def _change(c: MessageChange) -> Struct:
    return Struct("update.Change", (("OldValue", c.old), ("NewValue", c.new), ("Setter", c.setter)))


def _changes_map(items: list[tuple[Struct, list[Struct]]]) -> GoMap:
    return GoMap("update.ObjectIdentifier", "[]update.Change",
                 ((k, GoList("update.Change", v)) for k, v in items),
                 zero=lambda: GoList("update.Change"))


def _image_ref(image: str, policy: str) -> Struct:
    """go-containerregistry's reference, as the image a policy selected."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    repo, tag = (name.rsplit(":", 1) if ":" in last else (name, "latest"))
    first, _, rest = repo.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = ("index.docker.io" if first == "docker.io" else first), rest
    else:
        registry, path = "index.docker.io", repo
    if registry == "index.docker.io" and "/" not in path:
        path = "library/" + path
    identifier = digest or tag
    full = f"{registry}/{path}" + (f"@{digest}" if digest else f":{tag}")
    namespace, _, policy_name = policy.partition("/")
    methods = (("String", lambda: image), ("Identifier", lambda: identifier),
               ("Repository", lambda: path), ("Registry", lambda: registry),
               ("Name", lambda: full), ("Policy", lambda: _namespaced(namespace, policy_name)))
    return Struct("update.imageRef", (("original", image), ("policy", policy)), methods=methods,
                  string=lambda: image)


def template_data(namespace: str, name: str, values: Sequence[tuple[str, str]],
                  changes: Sequence[MessageChange]) -> Struct:
    """The value Flux gives the template, built from the changes of one automation."""
    per_file: dict[str, dict[ObjectRef, list[MessageChange]]] = {}
    for c in changes:
        per_file.setdefault(c.file, {}).setdefault(c.obj, []).append(c)
    file_changes = GoMap("string", "update.ObjectChanges",
                         ((f, _changes_map([(_object(o), [_change(c) for c in cs])
                                            for o, cs in sorted(objs.items())]))
                          for f, objs in sorted(per_file.items())),
                         zero=lambda: _changes_map([]))
    distinct: list[Struct] = []
    objects: dict[ObjectRef, list[Struct]] = {}
    for f, objs in sorted(per_file.items()):
        for o, cs in sorted(objs.items()):
            objects[o] = [_change(c) for c in cs]
            distinct.extend(s for s in objects[o] if s not in distinct)
    legacy = _legacy_result(per_file)
    changed = Struct(
        "update.Result", (("FileChanges", file_changes), ("ImageResult", legacy)),
        methods=(("Changes", lambda: GoList("update.Change", distinct)),
                 ("Objects", lambda: _changes_map([(_object(o), cs) for o, cs in sorted(objects.items())]))))
    return Struct("source.TemplateData", (
        ("AutomationObject", _namespaced(namespace, name)),
        ("Updated", legacy),
        ("Changed", changed),
        ("Values", GoMap("string", "string", values, zero=lambda: "")),
    ))


def _legacy_result(per_file: dict[str, dict[ObjectRef, list[MessageChange]]]) -> Struct:
    """Flux's pre-v1 `update.Result`: files -> objects -> images."""
    refs: dict[tuple[str, str], Struct] = {}

    def ref(c: MessageChange) -> Struct:
        return refs.setdefault((c.image, c.policy), _image_ref(c.image, c.policy))

    def images_map(items: list[tuple[ObjectRef, list[Struct]]]) -> GoMap:
        return GoMap("update.ObjectIdentifier", "[]update.ImageRef",
                     ((_object(o), GoList("update.ImageRef", v)) for o, v in items),
                     zero=lambda: GoList("update.ImageRef"))

    def file_result(entries: list[tuple[ObjectRef, list[Struct]]]) -> Struct:
        return Struct("update.FileResult", (("Objects", images_map(entries)),))

    files = GoMap("string", "update.FileResult", zero=lambda: file_result([]))
    images: list[Struct] = []
    objects: dict[ObjectRef, list[Struct]] = {}
    for f, objs in sorted(per_file.items()):
        entries = [(o, [ref(c) for c in cs]) for o, cs in sorted(objs.items())]
        files[f] = file_result(entries)
        for o, rs in entries:
            objects.setdefault(o, []).extend(rs)
            images.extend(r for r in rs if all(r is not seen for seen in images))
    return Struct("update.Result", (("Files", files),), methods=(
        ("Images", lambda: GoList("update.ImageRef", images)),
        ("Objects", lambda: images_map(sorted(objects.items())))))


# -- rendering and checking -------------------------------------------------------------------


def render_message(update: ImageUpdate, changes: Sequence[MessageChange]) -> str:
    """The automation's message; TemplateError when its template does not parse or run."""
    template = parse(update.message_template)
    return template.execute(template_data(update.namespace, update.name,
                                          update.message_template_values, changes))


def sample_changes(update: ImageUpdate) -> list[MessageChange]:
    """Two changes in two files: what `check` runs a template on to catch `.Foo` typos."""
    ns = update.namespace
    return [
        MessageChange("apps/app.yaml", ObjectRef("apps/v1", "Deployment", "app", ns),
                      "registry.example.com/app:1.0.0", "registry.example.com/app:1.0.1",
                      f"{ns}:app", f"{ns}/app", "registry.example.com/app:1.0.1"),
        MessageChange("apps/kustomization.yaml",
                      ObjectRef("kustomize.config.k8s.io/v1beta1", "Kustomization"),
                      "2.3.0", "2.4.0", f"{ns}:web:tag", f"{ns}/web", "ghcr.io/example/web:2.4.0"),
    ]


def check_message(update: ImageUpdate) -> list[Problem]:
    """`gitward check` on an automation's template: it parses, it runs on sample changes, and
    it uses no field that current Flux has removed. Located at the template's field."""
    pos = update.message_origin or update.origin
    what = f"ImageUpdateAutomation {update.key.ref}: commit message template"
    try:
        template: Template = parse(update.message_template)
        template.execute(template_data(update.namespace, update.name,
                                       update.message_template_values, sample_changes(update)))
    except TemplateError as err:
        return [template_problem(update, err)]
    removed = sorted(_REMOVED & _field_names(template.templates.values()))
    if removed:
        fields = " and ".join(f".{name}" for name in removed)
        return [Problem(Severity.WARNING, f"{what} uses {fields}, which current image-automation-"
                        "controller has removed (Flux fails such an automation); gitward renders "
                        "it as older Flux did", pos, code="message-template-removed",
                        hint="use .Changed.Changes, .Changed.FileChanges or .Changed.Objects")]
    return []


def _field_names(nodes: Iterable[Any]) -> set[str]:
    """Every field name a template's parse tree uses (`.A.B`, `$x.A`, `(...).A`)."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, tuple):
            names |= _field_names(node)
        elif dataclasses.is_dataclass(node):
            if isinstance(node, (Field, Chain)):
                names.update(node.idents if isinstance(node, Field) else node.fields)
            elif isinstance(node, Variable):
                names.update(node.idents[1:])
            names |= _field_names(getattr(node, f.name) for f in dataclasses.fields(node))
    return names


def template_problem(update: ImageUpdate, err: TemplateError) -> Problem:
    """A template error as a problem at the automation's message template."""
    pos = update.message_origin or update.origin or SourcePos(update.key.ref)
    return Problem(Severity.ERROR, f"ImageUpdateAutomation {update.key.ref}: commit message "
                   f"template: {err.message}", pos, code="message-template")

