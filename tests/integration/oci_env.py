"""Flux artifacts for the tests, pushed through the real registry's distribution API.

`push_artifact` lays an artifact out as `flux push artifact` does: an OCI image manifest whose
config is `application/vnd.cncf.flux.config.v1+json` and whose one layer is the gzip'd tar of a
directory (`application/vnd.cncf.flux.content.v1.tar+gzip`), annotated with the source, the
revision and the creation time. `tarball` builds layers, including hostile ones (a member that
climbs out with `..`, an absolute path, a symlink pointing out).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.integration.registry_env import OCI_MANIFEST, RegistryEnvError, _upload_blob

FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"
FLUX_CONTENT = "application/vnd.cncf.flux.content.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ANNOTATIONS = {
    "org.opencontainers.image.source": "https://github.com/acme/fleet.git",
    "org.opencontainers.image.revision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
    "org.opencontainers.image.created": "2026-11-30T10:00:00Z",
}


@dataclass(frozen=True)
class Member:
    """A tar member: a file (`data`), a directory, a symlink or a hard link (`link`)."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    link: str = ""


def tarball(files: dict[str, str] | None = None, extra: Iterable[Member] = ()) -> bytes:
    """A gzip'd tar of `files` (name -> text) and `extra` members, in that order, with fixed
    times so the same input gives the same bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        members = [Member(name, text.encode()) for name, text in (files or {}).items()]
        for member in [*members, *extra]:
            info = tarfile.TarInfo(member.name)
            info.type, info.mtime, info.mode = member.kind, 1_700_000_000, 0o644
            info.linkname = member.link
            if member.kind == tarfile.REGTYPE:
                info.size = len(member.data)
                tar.addfile(info, io.BytesIO(member.data))
            else:
                info.mode = 0o755 if member.kind == tarfile.DIRTYPE else 0o777
                tar.addfile(info)
    return gzip.compress(buffer.getvalue(), mtime=0)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_artifact(base: str, repository: str, tag: str, layer: bytes, *,
                  media_type: str = FLUX_CONTENT, annotations: dict[str, str] | None = None,
                  extra_layers: Iterable[tuple[str, bytes]] = ()) -> str:
    """Push a Flux-layout artifact with `layer` (and any `extra_layers` after it) as `tag`;
    returns the manifest's digest."""
    with httpx.Client(timeout=30, trust_env=False) as client:
        config = b"{}"
        config_digest = _upload_blob(client, base, repository, config)
        layers = []
        for kind, data in [(media_type, layer), *extra_layers]:
            layers.append({"mediaType": kind, "digest": _upload_blob(client, base, repository, data),
                           "size": len(data)})
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": FLUX_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": layers,
            "annotations": ANNOTATIONS if annotations is None else annotations,
        }).encode()
        return _put_manifest(client, base, repository, tag, manifest, OCI_MANIFEST)


def push_index(base: str, repository: str, tag: str, manifest_digest: str) -> str:
    """Tag an image index (a multi-platform image) that lists one manifest."""
    index = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": 1,
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }).encode()
    with httpx.Client(timeout=30, trust_env=False) as client:
        return _put_manifest(client, base, repository, tag, index, OCI_INDEX)


def _put_manifest(client: httpx.Client, base: str, repository: str, tag: str, body: bytes,
                  media_type: str) -> str:
    put = client.put(f"{base}/v2/{repository}/manifests/{tag}", content=body,
                     headers={"Content-Type": media_type})
    if put.status_code != 201:
        raise RegistryEnvError(f"pushing {repository}:{tag} answered {put.status_code}: {put.text}")
    digest: str = put.headers["docker-content-digest"]
    if digest != sha256(body):
        raise RegistryEnvError(f"the registry named {repository}:{tag} {digest}, not {sha256(body)}")
    return digest


def corrupt_blob(storage: Path, digest: str) -> None:
    """Flip the bytes of a stored blob behind the registry's back (same size, other digest)."""
    hexa = digest.removeprefix("sha256:")
    data = storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexa[:2] / hexa / "data"
    original = data.read_bytes()
    data.write_bytes(bytes(b ^ 0xFF for b in original))
