"""Reading a Flux GitRepository (source.toolkit.fluxcd.io) into a GitSource."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from engine.model import GitRef, GitSource
from engine.rules.fluxmanifest import (
    Manifest,
    or_else,
    read_git_ref,
    read_header,
    read_local_ref,
)
from engine.rules.yamldoc import Struct

GIT_SCHEMES = ("http", "https", "ssh", "file")
"""Flux's CRD admits http, https and ssh; gitward also reads file:// (local mirrors, tests)."""


def read_git_repository(m: Manifest) -> GitSource | None:
    beta = {"gitImplementation": "deprecated by Flux", "accessFrom": ""} if m.version != "v1" else {}
    h = read_header(
        m,
        ("url", "secretRef", "interval", "timeout", "ref", "ignore", "suspend", "recurseSubmodules"),
        ignored={
            "provider": "", "serviceAccountName": "", "proxySecretRef": "", "include": "",
            "verify": "commit signatures are not verified",
            "sparseCheckout": "the whole repository is checked out", **beta,
        },
    )
    spec = h.spec
    if spec is None:
        return None
    url = or_else(spec.string("url", required=True), "")
    if url:
        _check_git_url(spec, url)
    return GitSource(
        name=h.name,
        url=url,
        namespace=h.namespace,
        ref=or_else(read_git_ref(spec, "ref"), GitRef(branch="master")),
        interval=or_else(spec.duration("interval", required=True), timedelta(minutes=1)),
        timeout=or_else(spec.duration("timeout", hours=False), timedelta(seconds=60)),
        secret_ref=read_local_ref(spec, "secretRef"),
        ignore=or_else(spec.string("ignore"), ""),
        suspend=bool(spec.boolean("suspend")),
        recurse_submodules=bool(spec.boolean("recurseSubmodules")),
        origin=m.origin,
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
        line = spec.pos("url").line
        spec.problems.error(
            f"spec.url (line {line}) carries credentials: put them in the Secret named by spec.secretRef",
            spec.doc.pos(spec.at),
        )
    elif parts.scheme not in GIT_SCHEMES or not url.startswith(f"{parts.scheme}://"):
        spec.error("url", "must start with http://, https://, ssh:// or file://")
