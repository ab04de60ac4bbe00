"""Reading the Flux sources (source.toolkit.fluxcd.io): a GitRepository into a GitSource, an
OCIRepository into an OCISource."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from engine.model import (
    GitRef,
    GitSource,
    LayerOperation,
    LayerSelector,
    OCIRef,
    OCISource,
)
from engine.rules.fluxapi import IGNORED_FIELD
from engine.rules.fluxmanifest import (
    Manifest,
    or_else,
    read_git_ref,
    read_header,
    read_local_ref,
)
from engine.rules.regex import PatternError, compile_pattern
from engine.rules.semver import ConstraintError, parse_constraint
from engine.rules.yamldoc import Struct

GIT_SCHEMES = ("http", "https", "ssh", "file")
"""Flux's CRD admits http, https and ssh; gitward also reads file:// (local mirrors, tests)."""

GIT_CREDENTIALS = ("git credentials come from gitward's --ssh-key (or GIT_SSH_COMMAND) and "
                   "GITWARD_GIT_TOKEN")
"""What gitward authenticates to git with, instead of a cloud identity (it does not read the
GitRepository's secretRef Secret)."""


def read_git_repository(m: Manifest) -> GitSource | None:
    beta = {"gitImplementation": "deprecated by Flux", "accessFrom": ""} if m.version != "v1" else {}
    h = read_header(
        m,
        ("url", "secretRef", "proxySecretRef", "interval", "timeout", "ref", "ignore", "suspend",
         "recurseSubmodules", "provider"),
        ignored={
            "serviceAccountName": "only the azure provider uses it, and gitward gets no Azure "
                                  f"identity: {GIT_CREDENTIALS}",
            "include": "the repositories it names are not copied in: a Kustomization on this "
                       "source sees this repository's files only",
            "verify": "commit signatures are not verified: the fetched commit is used as it is",
            "sparseCheckout": "the whole repository is checked out",
        },
        retired=beta,
    )
    spec = h.spec
    if spec is None:
        return None
    url = or_else(spec.string("url", required=True), "")
    if url:
        _check_git_url(spec, url)
    provider = spec.enum("provider", ("generic", "azure", "github"), "generic")
    if provider in ("azure", "github"):
        what = "an Azure workload identity" if provider == "azure" else "a GitHub App"
        spec.warning("provider", f"gitward gets no token from {what}: {GIT_CREDENTIALS}",
                     code=IGNORED_FIELD)
    spec.carry("provider")
    return GitSource(
        name=h.name,
        url=url,
        namespace=h.namespace,
        ref=or_else(read_git_ref(spec, "ref")[0], GitRef(branch="master")),
        interval=or_else(spec.duration("interval", required=True), timedelta(minutes=1)),
        timeout=or_else(spec.duration("timeout", hours=False), timedelta(seconds=60)),
        secret_ref=read_local_ref(spec, "secretRef"),
        proxy_secret_ref=read_local_ref(spec, "proxySecretRef"),
        ignore=or_else(spec.string("ignore"), ""),
        suspend=bool(spec.boolean("suspend")),
        recurse_submodules=bool(spec.boolean("recurseSubmodules")),
        flux_fields=h.carried.flux_fields(),
        origin=m.origin,
    )


def _carries_credentials(spec: Struct) -> None:
    """Reported at `spec:` with the line named, so that the excerpt printed under the error does
    not show the secret; the message does not repeat the URL."""
    line = spec.pos("url").line
    spec.problems.error(
        f"spec.url (line {line}) carries credentials: put them in the Secret named by spec.secretRef",
        spec.doc.pos(spec.at),
    )


def _check_git_url(spec: Struct, url: str) -> None:
    """No credentials (they belong in the Secret, never in gitward's DB), then Flux's pattern.

    A URL with credentials is reported at `spec:` with the line named, so that the excerpt
    printed under the error does not show the secret; no message repeats the URL.
    """
    try:
        parts = urlsplit(url)
        password, user = parts.password, parts.username
    except ValueError:
        spec.error("url", "is not a valid URL")
        return
    if password is not None or (user and parts.scheme in ("http", "https")):
        _carries_credentials(spec)
    elif parts.scheme not in GIT_SCHEMES or not url.startswith(f"{parts.scheme}://"):
        spec.error("url", "must start with http://, https://, ssh:// or file://")


OCI_SCHEME = "oci://"
REGISTRY_PROVIDERS = ("generic", "aws", "azure", "gcp")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}")
_OCI_REF = ("tag", "semver", "semverFilter", "digest")
REGISTRY_CREDENTIALS = ("gitward logs in with the pull secret this object names (read from the "
                        "cluster), else with docker's config.json")
"""What gitward authenticates to a registry with, instead of a cloud identity."""


def provider_note(provider: str) -> str:
    """Why a registry `provider` other than generic changes nothing (Flux YAML and DSL say it)."""
    return f"gitward gets no {provider} workload identity: {REGISTRY_CREDENTIALS}"


SERVICE_ACCOUNT_NOTE = f"the ServiceAccount's image pull secrets are not read: {REGISTRY_CREDENTIALS}"
"""Why a registry `serviceAccountName` changes nothing."""


def read_registry_identity(spec: Struct) -> tuple[str, str]:
    """`spec.provider` and `spec.serviceAccountName` of an ImageRepository or an OCIRepository:
    read, and a located warning each where they ask for what gitward does not do."""
    provider = or_else(spec.enum("provider", REGISTRY_PROVIDERS, "generic"), "generic")
    if provider != "generic":
        spec.warning("provider", provider_note(provider), code=IGNORED_FIELD)
    account = or_else(spec.string("serviceAccountName"), "")
    if account:
        spec.warning("serviceAccountName", SERVICE_ACCOUNT_NOTE, code=IGNORED_FIELD)
    return provider, account


def read_oci_repository(m: Manifest) -> OCISource | None:
    """An OCIRepository (v1, v1beta2; Flux never served it as v1beta1).

    Fields gitward cannot honour are located warnings that say what it does instead.
    """
    if m.version == "v1beta1":
        m.problems.error(f"OCIRepository is not served as {m.api_version}: use "
                         "source.toolkit.fluxcd.io/v1 (or v1beta2)", m.origin)
        return None
    h = read_header(
        m,
        ("url", "ref", "layerSelector", "provider", "secretRef", "verify", "serviceAccountName",
         "certSecretRef", "proxySecretRef", "timeout", "interval", "ignore", "insecure", "suspend"),
    )
    spec = h.spec
    if spec is None:
        return None
    url = or_else(spec.string("url", required=True), "")
    if url:
        _check_oci_url(spec, url)
    provider, account = read_registry_identity(spec)
    _read_verify(spec)
    return OCISource(
        name=h.name,
        url=url,
        namespace=h.namespace,
        ref=_read_oci_ref(spec),
        interval=or_else(spec.duration("interval", required=True), timedelta(minutes=1)),
        timeout=or_else(spec.duration("timeout", hours=False), timedelta(seconds=60)),
        secret_ref=read_local_ref(spec, "secretRef"),
        cert_secret_ref=read_local_ref(spec, "certSecretRef"),
        proxy_secret_ref=read_local_ref(spec, "proxySecretRef"),
        insecure=bool(spec.boolean("insecure")),
        provider=provider,
        service_account_name=account,
        layer_selector=_read_layer_selector(spec),
        ignore=or_else(spec.string("ignore"), ""),
        suspend=bool(spec.boolean("suspend")),
        flux_fields=h.carried.flux_fields(),
        origin=m.origin,
    )


def _check_oci_url(spec: Struct, url: str) -> None:
    """`oci://host[:port]/repository`: no credentials, no tag, no digest (as Flux refuses them)."""
    if not url.startswith(OCI_SCHEME):
        spec.error("url", "must be in the format oci://<host>/<org>/<repo>")
        return
    rest = url[len(OCI_SCHEME):]
    host, slash, path = rest.partition("/")
    if "@" in host:
        _carries_credentials(spec)
    elif not host or not slash or not path:
        spec.error("url", "must be in the format oci://<host>/<org>/<repo>")
    elif "@" in path:
        spec.error("url", f"must not contain a digest; remove '@{path.split('@', 1)[1]}' and set spec.ref.digest")
    elif ":" in path:
        spec.error("url", f"must not contain a tag; remove ':{path.split(':', 1)[1]}' and set spec.ref.tag")


def _read_oci_ref(spec: Struct) -> OCIRef:
    sub = spec.struct("ref", _OCI_REF)
    if sub is None:
        return OCIRef()
    ref = OCIRef(tag=or_else(sub.string("tag"), ""), semver=or_else(sub.string("semver"), ""),
                 semver_filter=or_else(sub.string("semverFilter"), ""),
                 digest=or_else(sub.string("digest"), ""))
    if ref.digest and not _DIGEST.fullmatch(ref.digest):
        sub.error("digest", f'"{ref.digest}" is not a digest: expected sha256: and 64 hex digits')
    if ref.semver:
        try:
            parse_constraint(ref.semver)
        except ConstraintError as err:
            sub.error("semver", f'invalid semver range "{ref.semver}": {err}')
    if ref.semver_filter:
        try:
            compile_pattern(ref.semver_filter)
        except PatternError as err:
            sub.error("semverFilter", f'invalid regex "{ref.semver_filter}": {err.cause}')
        if not ref.semver:
            sub.warning("semverFilter", "has no effect without spec.ref.semver", at_key=True)
    return ref


def _read_layer_selector(spec: Struct) -> LayerSelector:
    sub = spec.struct("layerSelector", ("mediaType", "operation"))
    if sub is None:
        return LayerSelector()
    operation = sub.enum("operation", [op.value for op in LayerOperation], LayerOperation.EXTRACT.value)
    return LayerSelector(or_else(sub.string("mediaType"), ""),
                         LayerOperation(operation or LayerOperation.EXTRACT.value))


def _read_verify(spec: Struct) -> None:
    """`spec.verify`, checked and carried, with the warning that no signature is verified."""
    sub = spec.struct("verify", ("provider", "secretRef", "matchOIDCIdentity"))
    if sub is None:
        return
    provider = or_else(sub.enum("provider", ("cosign", "notation"), "cosign"), "cosign")
    spec.warning("verify", f"{provider} signatures are not verified by gitward: the artifact is "
                 "checked against the digests in its manifest only", at_key=True, code=IGNORED_FIELD)
    spec.carry("verify")
