"""Facts about one image in a registry: its digest, and when it was built.

`manifest_digest` asks with HEAD, as Flux's digest reflection does (Docker Hub counts a GET of a
manifest against its pull limit, not a HEAD), accepting the OCI and Docker manifest and index
types, so a multi-platform image answers with its index's digest, the one `image@digest` pins.
`image_config` reads what a digest was built from, once per digest (the caller keeps it): the
manifest, for an index the manifest of its linux/amd64 image (else its first real platform's),
then the configuration blob, whose `created` says when the image was built. Both go through a
`RegistrySession` (tokens, retries, redaction) and verify every digest they are given.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from engine.observe.oci import ACCEPT, DOCKER_LIST, OCI_INDEX
from engine.observe.registryhttp import RegistryError, RegistrySession, read_capped

MAX_MANIFEST_BYTES = 4 << 20
"""The largest manifest read (distribution's own limit)."""
MAX_CONFIG_BYTES = 8 << 20
"""The largest image configuration read; its history of layers is what makes one big."""
PREFERRED_PLATFORM = ("linux", "amd64")
"""Which image of an index tells when it was built: all of one index are built together."""

_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class ImageConfig:
    """When the image a digest names was built: its configuration's `created`, None when the
    configuration has none (or one that is not an RFC 3339 time)."""

    digest: str
    created: datetime | None


def manifest_digest(session: RegistrySession, tag: str) -> str:
    """The digest `tag` names now (an index's for a multi-platform image); RegistryError when
    the registry has no such tag or cannot say."""
    url = _manifest_url(session, tag)
    response = session.fetch(url, accept=ACCEPT, expect=(200, 404), method="HEAD")
    response.close()
    if response.status_code == 404:
        raise _no_such(session, tag)
    announced = str(response.headers.get("docker-content-digest", ""))
    if _SHA256.fullmatch(announced):
        return announced
    body = _manifest_body(session, tag)  # a registry that names no digest on HEAD: hash the body
    return "sha256:" + hashlib.sha256(body).hexdigest()


def image_config(session: RegistrySession, digest: str) -> ImageConfig:
    """What the image `digest` names says of its making; RegistryError when it cannot be read."""
    doc = _manifest(session, digest)
    if doc.get("mediaType") in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
        doc = _manifest(session, _platform_digest(session, digest, doc))
    config = doc.get("config")
    if not isinstance(config, dict) or not _SHA256.fullmatch(str(config.get("digest", ""))):
        raise _invalid(session, digest, "names no configuration blob")
    blob = _blob(session, str(config["digest"]))
    try:
        created = json.loads(blob).get("created")
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise _invalid(session, digest, "has a configuration that is not a JSON object") from None
    return ImageConfig(digest, _time(created))


def _manifest_url(session: RegistrySession, reference: str) -> httpx.URL:
    image = session.image
    return httpx.URL(f"{image.base_url}/v2/{image.repository}/manifests/{reference}")


def _manifest_body(session: RegistrySession, reference: str) -> bytes:
    response = session.fetch(_manifest_url(session, reference), accept=ACCEPT, expect=(200, 404),
                             stream=True)
    try:
        body = read_capped(response, MAX_MANIFEST_BYTES)
    finally:
        response.close()
    if response.status_code == 404:
        raise _no_such(session, reference)
    if body is None:
        raise _invalid(session, reference, f"is larger than {MAX_MANIFEST_BYTES} bytes")
    return body


def _manifest(session: RegistrySession, digest: str) -> dict[str, Any]:
    body = _manifest_body(session, digest)
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise _invalid(session, digest, "was sent with other content than its digest names")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _invalid(session, digest, "is not valid JSON") from None
    if not isinstance(doc, dict):
        raise _invalid(session, digest, "is not a JSON object")
    return doc


def _platform_digest(session: RegistrySession, digest: str, index: dict[str, Any]) -> str:
    """The index entry whose image says when all of them were built."""
    entries = [e for e in index.get("manifests") or [] if isinstance(e, dict)
               and _SHA256.fullmatch(str(e.get("digest", "")))]
    images = [e for e in entries if _platform(e) != ("unknown", "unknown")]  # not attestations
    for entry in images:
        if _platform(entry) == PREFERRED_PLATFORM:
            return str(entry["digest"])
    if not images:
        raise _invalid(session, digest, "is an image index that lists no image")
    return str(images[0]["digest"])


def _platform(entry: dict[str, Any]) -> tuple[str, str]:
    platform = entry.get("platform")
    if not isinstance(platform, dict):
        return "", ""
    return str(platform.get("os", "")), str(platform.get("architecture", ""))


def _blob(session: RegistrySession, digest: str) -> bytes:
    image = session.image
    url = httpx.URL(f"{image.base_url}/v2/{image.repository}/blobs/{digest}")
    response = session.fetch(url, accept="*/*", stream=True)
    try:
        body = read_capped(response, MAX_CONFIG_BYTES)
    except httpx.HTTPError as err:
        raise RegistryError(f"reading the configuration {digest} of {image} failed: {err}",
                            permanent=False) from None
    finally:
        response.close()
    if body is None:
        raise _invalid(session, digest, f"is larger than {MAX_CONFIG_BYTES} bytes", blob=True)
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise _invalid(session, digest, "was sent with other content than its digest names",
                       blob=True)
    return body


def _time(value: object) -> datetime | None:
    """An RFC 3339 time (Go writes nanoseconds; Python keeps microseconds), as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _no_such(session: RegistrySession, reference: str) -> RegistryError:
    image = session.image
    what = f"{image}@{reference}" if reference.startswith("sha256:") else f"{image}:{reference}"
    return session.fail(f"registry {image.registry} has no image {what}", permanent=True, status=404)


def _invalid(session: RegistrySession, reference: str, problem: str, *,
             blob: bool = False) -> RegistryError:
    what = f"the configuration blob {reference} of" if blob else f"the manifest {reference} of"
    return session.fail(f"{what} {session.image} {problem}", permanent=True)
