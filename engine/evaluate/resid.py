"""Object identities and selectors as kustomize compares them (engine/evaluate/kustomize.py).

kustomize names an object by group, version, kind, name and namespace. Two ids are equal when
all match, an absent namespace counting as `default` and the namespace of a cluster-scoped kind
not counting at all. Which kinds are cluster-scoped comes from the OpenAPI schema kustomize
embeds (Kubernetes 1.21), by exact apiVersion and kind; every other kind, a Flux kind among
them, is namespaced. Patch targets select by anchored Go regular expressions over the id and
by Kubernetes label selectors over labels and annotations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.rules.regex import PatternError, Regex, compile_pattern, utf8

NO_NAMESPACE = "_non_namespaceable_"
"""The effective namespace of a cluster-scoped object (kustomize's TotallyNotANamespace)."""

CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    (line.split()[0], line.split()[1]) for line in """
    v1 ComponentStatus
    v1 Namespace
    v1 Node
    v1 PersistentVolume
    admissionregistration.k8s.io/v1 MutatingWebhookConfiguration
    admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration
    admissionregistration.k8s.io/v1beta1 MutatingWebhookConfiguration
    admissionregistration.k8s.io/v1beta1 ValidatingWebhookConfiguration
    apiextensions.k8s.io/v1 CustomResourceDefinition
    apiextensions.k8s.io/v1beta1 CustomResourceDefinition
    apiregistration.k8s.io/v1 APIService
    apiregistration.k8s.io/v1beta1 APIService
    certificates.k8s.io/v1 CertificateSigningRequest
    certificates.k8s.io/v1beta1 CertificateSigningRequest
    flowcontrol.apiserver.k8s.io/v1beta1 FlowSchema
    flowcontrol.apiserver.k8s.io/v1beta1 PriorityLevelConfiguration
    networking.k8s.io/v1 IngressClass
    networking.k8s.io/v1beta1 IngressClass
    node.k8s.io/v1 RuntimeClass
    node.k8s.io/v1beta1 RuntimeClass
    policy/v1beta1 PodSecurityPolicy
    rbac.authorization.k8s.io/v1 ClusterRole
    rbac.authorization.k8s.io/v1 ClusterRoleBinding
    rbac.authorization.k8s.io/v1beta1 ClusterRole
    rbac.authorization.k8s.io/v1beta1 ClusterRoleBinding
    scheduling.k8s.io/v1 PriorityClass
    scheduling.k8s.io/v1beta1 PriorityClass
    storage.k8s.io/v1 CSIDriver
    storage.k8s.io/v1 CSINode
    storage.k8s.io/v1 StorageClass
    storage.k8s.io/v1 VolumeAttachment
    storage.k8s.io/v1beta1 CSIDriver
    storage.k8s.io/v1beta1 CSINode
    storage.k8s.io/v1beta1 StorageClass
    storage.k8s.io/v1beta1 VolumeAttachment
    """.split("\n") if line.strip())
"""(apiVersion, kind) pairs kustomize v5 knows as cluster-scoped, found by experiment: every
other pair gets `metadata.namespace` from a kustomization's `namespace`."""


def split_api_version(api_version: str) -> tuple[str, str]:
    """(group, version): `apps/v1` -> ("apps", "v1"), `v1` -> ("", "v1")."""
    group, slash, version = api_version.partition("/")
    return (group, version) if slash else ("", api_version)


@dataclass(frozen=True)
class ResId:
    """An object's identity: apiVersion, kind, name and namespace as written ("" when absent)."""

    api_version: str
    kind: str
    name: str
    namespace: str = ""

    @property
    def group(self) -> str:
        return split_api_version(self.api_version)[0]

    @property
    def version(self) -> str:
        return split_api_version(self.api_version)[1]

    @property
    def cluster_scoped(self) -> bool:
        return (self.api_version, self.kind) in CLUSTER_SCOPED

    @property
    def effective_namespace(self) -> str:
        if self.cluster_scoped:
            return NO_NAMESPACE
        return self.namespace or "default"

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What kustomize compares: equal keys are the same object."""
        return (self.api_version, self.kind, self.name, self.effective_namespace)

    def __str__(self) -> str:
        """kustomize's spelling, `Kind.version.group/name.namespace`, as its errors print ids."""
        group, version = split_api_version(self.api_version)
        gvk = ".".join((self.kind or "[noKind]", version or "[noVer]", group or "[noGrp]"))
        return f"{gvk}/{self.name or '[noName]'}.{self.namespace or '[noNs]'}"


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def res_id(body: Mapping[str, Any]) -> ResId:
    """The id of an object body (absent or odd fields read as kustomize's text of them)."""
    meta = body.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return ResId(_scalar(body.get("apiVersion")), _scalar(body.get("kind")),
                 _scalar(meta.get("name")), _scalar(meta.get("namespace")))


# Patch targets -------------------------------------------------------------------------------


class SelectorError(ValueError):
    """A target kustomize refuses: a bad regular expression or label selector."""


def _anchored(pattern: str) -> Regex | None:
    if not pattern:
        return None
    try:
        return compile_pattern(f"^(?:{pattern})$")
    except PatternError as err:
        raise SelectorError(f"invalid regular expression {pattern!r}: {err.cause}") from None


def _matches(regex: Regex | None, text: str) -> bool:
    return regex is None or regex.search(utf8(text)) is not None


@dataclass(frozen=True)
class Target:
    """A patch target: group, version, kind, name and namespace as anchored regexes, plus label
    and annotation selectors. A name or namespace matches the object's original or current one."""

    group: Regex | None
    version: Regex | None
    kind: Regex | None
    name: Regex | None
    namespace: Regex | None
    labels: Callable[[Mapping[str, str]], bool]
    annotations: Callable[[Mapping[str, str]], bool]

    @staticmethod
    def of(fields: Mapping[str, str]) -> Target:
        """From a kustomization's `target:` mapping; raises SelectorError."""
        return Target(_anchored(fields.get("group", "")), _anchored(fields.get("version", "")),
                      _anchored(fields.get("kind", "")), _anchored(fields.get("name", "")),
                      _anchored(fields.get("namespace", "")),
                      parse_selector(fields.get("labelSelector", "")),
                      parse_selector(fields.get("annotationSelector", "")))

    def selects(self, current: ResId, original: ResId, labels: Mapping[str, str],
                annotations: Mapping[str, str]) -> bool:
        if self.namespace is not None and not (
                _matches(self.namespace, original.effective_namespace)
                or _matches(self.namespace, current.effective_namespace)):
            return False
        if self.name is not None and not (_matches(self.name, original.name)
                                          or _matches(self.name, current.name)):
            return False
        group, version = split_api_version(current.api_version)
        return (_matches(self.group, group) and _matches(self.version, version)
                and _matches(self.kind, current.kind) and self.labels(labels)
                and self.annotations(annotations))


# Label selectors (k8s.io/apimachinery/pkg/labels) -----------------------------------------------

_REQUIREMENT = re.compile(
    r"\s*(?:(?P<not>!)\s*(?P<absent>[^\s,!=<>()]+)"
    r"|(?P<key>[^\s,!=<>()]+)\s*(?:(?P<op>==|=|!=|<|>)\s*(?P<value>[^\s,!=<>()]*)"
    r"|\s(?P<set>in|notin)\s*\((?P<values>[^()]*)\))?)\s*(?:,|$)")
_KEY = re.compile(r"(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_VALUE = re.compile(r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")

Requirement = Callable[[Mapping[str, str]], bool]


def _requirement(match: re.Match[str], text: str) -> Requirement:
    key = match["absent"] or match["key"]
    if not _KEY.fullmatch(key):
        raise SelectorError(f"invalid label key {key!r} in selector {text!r}")
    if match["absent"]:
        return lambda labels: key not in labels
    if match["op"] in ("=", "==", "!="):
        value = match["value"]
        if not _VALUE.fullmatch(value):
            raise SelectorError(f"invalid label value {value!r} in selector {text!r}")
        if match["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match["op"] in ("<", ">"):
        try:
            bound = int(match["value"])
        except ValueError:
            raise SelectorError(f"{match['value']!r} is not an integer in selector {text!r}") from None
        greater = match["op"] == ">"
        return lambda labels: _compare(labels.get(key), bound, greater)
    if match["set"]:
        values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
        if match["set"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    return lambda labels: key in labels


def _compare(value: str | None, bound: int, greater: bool) -> bool:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return False
    return number is not None and (number > bound if greater else number < bound)


def parse_selector(text: str) -> Requirement:
    """A label selector (`a=b,c!=d,e in (x,y),!f,g`) as a predicate; "" selects everything.

    Raises SelectorError on text Kubernetes refuses."""
    requirements: list[Requirement] = []
    pos = 0
    text_len = len(text.rstrip())
    while pos < text_len:
        match = _REQUIREMENT.match(text, pos)
        if match is None or match.end() == pos:
            raise SelectorError(f"unable to parse requirement in label selector {text!r}")
        requirements.append(_requirement(match, text))
        pos = match.end()
    return lambda labels: all(req(labels) for req in requirements)


def string_map(value: object) -> dict[str, str]:
    """Labels or annotations as strings, whatever the YAML held (kustomize reads node text)."""
    if not isinstance(value, dict):
        return {}
    return {str(k): _scalar(v) for k, v in value.items()}
